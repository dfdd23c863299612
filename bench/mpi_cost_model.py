#!/usr/bin/env python3
"""The cost model of bench/mpi_scaling.sh: reads its measurements (WORK dir),
writes them with the modelled times for 64 and 1024 ranks to OUT.json.

Drift (mpirun aimc drift, tools/cli/sweep_dispatch.h): J jobs (model, repeat),
handed out one at a time by rank 0, which also runs jobs on a second thread
and records every result (one journal line, appended and fsync'd). With P
ranks, a job of t_rep seconds, a setup of t_setup (every rank loads the
checkpoints and the test set, in parallel) and the launcher's t_launch:

  T(P) = t_launch + t_setup + max( ceil(J/P) * (t_rep + t_msg),  J * t_rec )
  t_msg = 2*alpha + (L + 8)/beta + t_poll/2   (a result of L bytes up, an index of <= 8 bytes down;
                                               rank 0 polls every t_poll = 1 ms)
  t_rec = t_fsync + 2*alpha + (L + 8)/beta    (rank 0's serial work per job)

t_setup is a run of one chip on one image at one time, t_launch mpirun's
start and end of `aimc --version` on 2 ranks, and t_rep = (T - t_setup)/J of
the single-process run on one thread; a repeat's time is linear in the test images, so the
quickstart's (10000 images) is t_rep * 10000 / LIMIT_TEST.

ResNet-32 data-parallel step (mpirun aimc train --shards S, S = K = 16 ranks):
G = 4 bytes x trainable parameters. aimc sums the shards' gradients with
Communicator::sum_in_shard_order: an MPI_Allgather of the sizes, then
MPI_Allgatherv of every rank's G bytes (each rank receives the other K-1
parts), then K-1 local float additions of G/4 values on every rank:

  T_ours = alpha*ceil(log2 K) + (K-1)*(alpha + G/beta) + (K-1)*G/bw_mem   (a ring allgather)
  T_ring = 2*(K-1)*(alpha + G/(K*beta))                                    (a ring allreduce: reduce-scatter + allgather)

and the step computes b samples per rank at t_sample each: fraction = T_comm / (b*t_sample + T_comm).
"""
import argparse
import json
import math
import os


def read(work, name):
    with open(os.path.join(work, name)) as f:
        return f.read().strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("out")
    ap.add_argument("--limit-test", type=int, required=True)
    ap.add_argument("--repeats", type=int, required=True)
    ap.add_argument("--cpu", default="")
    a = ap.parse_args()

    runs = {}
    for name in ["plain_1r1t", "mpi_1r1t", "mpi_2r1t", "plain_1r2t"]:
        j = json.loads(read(a.work, name + ".json"))
        runs[name] = {"wall_s": float(read(a.work, name + ".wall")), "aimc_seconds": j["seconds"], "ranks": j["ranks"],
                      "jobs": len(j["models"]) * j["repeats"]}
    t_setup = float(read(a.work, "setup.wall"))
    t_launch = float(read(a.work, "launch.wall"))
    t_rep = (runs["plain_1r1t"]["wall_s"] - t_setup) / runs["plain_1r1t"]["jobs"]
    base = runs["plain_1r1t"]["wall_s"]
    for r in runs.values():
        r["speedup_vs_1r1t"] = base / r["wall_s"]

    # A result message: the job index, a newline and its journal line (JSON, shortest round-trip doubles).
    full = json.loads(read(a.work, "plain_1r1t.json"))
    line = json.dumps({"model": 0, "label": full["models"][0]["label"], "repeat": 0,
                       "accuracy": full["models"][0]["accuracy"][0]}, separators=(",", ":")) + "\n"
    L = len("0\n") + len(line)
    t_fsync = float(read(a.work, "fsync.txt"))

    alpha = 2e-6          # s per message: an RDMA-class 100 Gb/s network (InfiniBand/RoCE); TCP is 10-50 us
    beta = 100e9 / 8      # bytes/s: 100 Gb/s
    t_poll = 1e-3         # rank 0's poll interval (sweep_dispatch.cpp)
    t_msg = 2 * alpha + (L + 8) / beta + t_poll / 2
    t_rec = t_fsync + 2 * alpha + (L + 8) / beta

    def drift_time(P, J, trep):
        return t_launch + t_setup + max(math.ceil(J / P) * (trep + t_msg), J * t_rec)

    t_rep_qs = t_rep * 10000 / a.limit_test
    model = []
    for label, J, trep in [("quickstart: 2 checkpoints x 5 chips, 10000 test images", 10, t_rep_qs),
                           ("a larger study: 2 checkpoints x 5120 chips, 10000 test images", 10240, t_rep_qs)]:
        t1 = drift_time(1, J, trep)
        for P in [1, 2, 64, 1024]:
            tp = drift_time(P, J, trep)
            comm = math.ceil(J / P) * t_msg
            model.append({"experiment": label, "jobs": J, "ranks": P, "time_s": tp, "speedup": t1 / tp,
                          "efficiency": t1 / tp / P, "communication_s": comm,
                          "rank0_serial_s": J * t_rec,
                          "limited_by": "jobs (ceil(J/P) = %d)" % math.ceil(J / P) if J < P else
                                        ("rank 0's recording" if J * t_rec > math.ceil(J / P) * (trep + t_msg)
                                         else "compute")})

    # ResNet-32.
    res = {}
    for t in (1, 2):
        j = json.loads(read(a.work, "resnet32_t%d.json" % t))
        res[t] = j["history"][-1]["seconds"] / 256.0
    import struct
    with open(os.path.join(a.work, "resnet32.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    params = 0
    for name, v in header.items():
        # Not gradients: the optimizer's state and BatchNorm's running statistics.
        if name == "__metadata__" or name.startswith("optim.") or "running" in name or "num_batches" in name:
            continue
        params += math.prod(v["shape"])
    G = 4 * params
    K = 16
    bw_mem = 10e9  # bytes/s of one core streaming the K-1 additions
    t_ours = alpha * math.ceil(math.log2(K)) + (K - 1) * (alpha + G / beta) + (K - 1) * G / bw_mem
    t_ring = 2 * (K - 1) * (alpha + G / (K * beta))
    step = []
    for b in (8, 64):
        comp = b * res[1]
        step.append({"samples_per_rank": b, "global_batch": b * K, "compute_s": comp,
                     "allgather_sum_s": t_ours, "fraction_communication_ours": t_ours / (comp + t_ours),
                     "ring_allreduce_s": t_ring, "fraction_communication_ring": t_ring / (comp + t_ring)})

    result = {
        "what": "strong scaling of mpirun aimc drift (the quickstart's experiment on %d test images, %d chips per "
                "checkpoint) on this machine, and a cost model for 64 and 1024 ranks; the communication share of a "
                "ResNet-32 data-parallel step at 16 ranks on 100 Gb/s" % (a.limit_test, a.repeats),
        "machine": {"cpu": a.cpu, "cores": os.cpu_count(),
                    "load_average_1_5_15_min": {"start": read(a.work, "load_start"), "end": read(a.work, "load_end")},
                    "note": "2 cores: 2 ranks run 1 thread each; compared with 1 rank x 1 thread and 1 rank x 2 threads"},
        "measured": {"runs": runs, "t_rep_s_per_job_1thread": t_rep, "t_setup_s": t_setup, "t_launch_s": t_launch,
                     "t_rep_quickstart_s": t_rep_qs, "result_message_bytes": L, "t_fsync_s": t_fsync,
                     "resnet32_s_per_sample": {"1_thread": res[1], "2_threads": res[2]},
                     "resnet32_parameters": params, "resnet32_gradient_bytes": G},
        "drift_model": {
            "formula": "T(P) = t_launch + t_setup + max(ceil(J/P)*(t_rep + t_msg), J*t_rec); "
                       "t_msg = 2*alpha + (L+8)/beta + t_poll/2; t_rec = t_fsync + 2*alpha + (L+8)/beta",
            "alpha_s": alpha, "beta_bytes_per_s": beta, "t_poll_s": t_poll, "t_msg_s": t_msg, "t_rec_s": t_rec,
            "rows": model},
        "resnet32_step_model": {
            "formula_ours": "T = alpha*ceil(log2 K) + (K-1)*(alpha + G/beta) + (K-1)*G/bw_mem "
                            "(sum_in_shard_order: allgather of every rank's full gradient, then K-1 local additions)",
            "formula_ring_allreduce": "T = 2*(K-1)*(alpha + G/(K*beta))",
            "ranks": K, "alpha_s": alpha, "beta_bytes_per_s": beta, "bw_mem_bytes_per_s": bw_mem,
            "t_sample_s": res[1], "rows": step},
    }
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(json.dumps({"t_rep": t_rep, "t_setup": t_setup, "speedups": {k: v["speedup_vs_1r1t"] for k, v in runs.items()},
                      "resnet": step}, indent=1))


if __name__ == "__main__":
    main()
