// Minimal reverse-mode autograd.
//
// An op computes its result, then calls record() with its inputs and a
// backward rule: a function from the gradient of the output to the gradients
// of the inputs. record() links the output to a Node when grad mode is on and
// an input requires grad. backward() visits the nodes in an iterative
// topological order (no recursion), so chains of any length work.
//
// Rules for backward lambdas: capture tensors with detach() (capturing the
// output itself would make a cycle), and return one gradient per input in
// input order (undefined Tensor() for "no gradient"). A gradient may have the
// broadcast shape; the engine sums it back to the input shape in one place.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace aimc {

using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

// Where the gradient of one input goes: the node that produced it, or the
// leaf tensor that accumulates it. Both empty: no gradient wanted.
struct Edge {
  std::shared_ptr<Node> node;
  std::shared_ptr<TensorImpl> leaf;
  Shape shape;
  DType dtype = DType::Float32;
  bool wanted() const { return node != nullptr || leaf != nullptr; }
};

struct Node {
  std::string name;
  std::vector<Edge> next;  // one per input of the op
  BackwardFn backward;     // empty once the graph is freed
  ~Node();                 // releases long chains iteratively
};

// True while gradients are recorded (thread-local; on by default). Ops must
// call record() on the calling thread, never inside a parallel_for body:
// worker threads do not see the caller's NoGradGuard.
bool grad_mode_enabled();

// Disables recording in its scope.
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Links `output` to its inputs with the backward rule (see the file comment).
// Returns output (now with a grad_fn) or output untouched when not recording.
Tensor record(Tensor output, const char* name, const std::vector<Tensor>& inputs, BackwardFn backward);

// True if recording is on and one of the tensors requires grad.
bool any_requires_grad(const std::vector<Tensor>& inputs);

// Sums a broadcast gradient back to `shape` (numpy broadcasting rules).
Tensor sum_to_shape(const Tensor& grad, const Shape& shape);

// Runs backward from `root`; see Tensor::backward.
void run_backward(const Tensor& root, const Tensor& grad_output, bool retain_graph);

}  // namespace aimc
