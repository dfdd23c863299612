// IOParameters: the analog matrix-vector multiply (MVM) model of one tile —
// DAC (input quantisation/clipping/noise), the crossbar product, and the ADC
// (output noise/nonlinearity/quantisation/clipping), plus noise and bound
// management. Field names and defaults follow aihwkit's IOParameters
// (REFERENCE.md section 1). Plain data only: no engine includes and no
// std::string, so CPU and CUDA code can both use it. Input and output values
// are in normalised units (inputs in ±inp_bound after noise management,
// outputs in ±out_bound); resolutions are fractions of the full range.
// JSON and validation live in layers/config/io_parameters_json.h.
#pragma once

namespace aimc {

// How each input row is scaled before the DAC (α in REFERENCE.md §1).
enum class NoiseManagementType {
  None,           // α = 1
  AbsMax,         // α = max|x| (capped at nm_thres if nm_thres > 0)
  AbsMaxNPSum,    // α from max|x| and the positive/negative input sums
  Max,            // α = max x
  Constant,       // α = nm_thres (1 if unset)
  AverageAbsMax,  // α = running mean of max|x| (decay 1e-3)
};

// How outputs that hit the ADC bound are handled.
enum class BoundManagementType {
  None,                // single pass, clipped outputs stay clipped
  Iterative,           // repeat with inputs halved (r = 1, 2, 4, ...) until no output clips
  IterativeWorstCase,  // as Iterative, but the second pass uses AbsMaxNPSum with r = 1
  Shift,               // shift-based bound management (aihwkit SHIFT)
};

// Output-referred weight (read) noise model.
enum class WeightNoiseType {
  None,              // no weight noise
  AdditiveConstant,  // y_i += w_noise·‖v‖₂·ξ_i
  PCMRead,           // y_i += w_noise·sqrt(Σ_j |W_ij|·v_j²)·ξ_i
};

// How the MVM is split into analog passes.
enum class AnalogMVType {
  OnePass,                   // one pass with signed inputs
  PosNegSeparate,            // positive and negative inputs in two passes, summed in analog
  PosNegSeparateDigitalSum,  // two passes, each through the ADC, summed digitally
};

struct IOParameters {
  // Exact floating-point MVM: no DAC/ADC, noise or management; only out_scale applied.
  bool is_perfect = false;
  // Pass structure of the MVM.
  AnalogMVType mv_type = AnalogMVType::OnePass;

  // DAC range: inputs clipped to ±inp_bound (must be 1 when noise management is on).
  float inp_bound = 1.0f;
  // DAC resolution as a fraction of the half range (1/126: 7 bit); <= 0 turns it off.
  float inp_res = 1.0f / 126.0f;
  // Stochastic rounding at the DAC instead of round-half-to-even.
  bool inp_sto_round = false;
  // σ of Gaussian noise added to each input after the DAC.
  float inp_noise = 0.0f;
  // Input asymmetry: negative inputs are multiplied by (1 − inp_asymmetry).
  float inp_asymmetry = 0.0f;

  // ADC range: outputs clipped to ±out_bound; <= 0 means no bound.
  float out_bound = 12.0f;
  // ADC resolution as a fraction of the half range (1/510: 9 bit); <= 0 turns it off.
  float out_res = 1.0f / 510.0f;
  // Stochastic rounding at the ADC.
  bool out_sto_round = false;
  // σ of additive Gaussian output noise (per output, per MVM).
  float out_noise = 0.06f;
  // Relative per-output-line spread of out_noise, drawn once per tile.
  float out_noise_std = 0.0f;
  // Output asymmetry: negative outputs are multiplied by (1 − out_asymmetry).
  float out_asymmetry = 0.0f;
  // Output nonlinearity: y ← y / (1 + n_i·|y|), n_i = out_nonlinearity/out_bound·(1 + std·ξ).
  float out_nonlinearity = 0.0f;
  // Relative per-output-line spread of out_nonlinearity, drawn once per tile.
  float out_nonlinearity_std = 0.0f;
  // Fixed digital output gain applied to the result.
  float out_scale = 1.0f;
  // ADC slope calibration: the relative output level (fraction of out_bound)
  // where the calibrated nonlinearity has slope 1 on average; the outputs of
  // the nonlinearity are multiplied by g = (1 + (mean_i n_i + r_series)·
  // slope_calibration·out_bound)². Acts only with out_nonlinearity > 0 or
  // r_series > 0; 0 turns it off.
  float slope_calibration = 0.0f;
  // Systematic voltage offset per output line, drawn once per tile (0 on
  // half the lines, N(0, v_offset_std²) on the others, as aihwkit draws it):
  // y_i ← (1 − v_i)·y_i, less (1 + v_i) times a reference column's current
  // when v_offset_w_min != 0 (see kernels/cpu/analog_mvm.h).
  float v_offset_std = 0.0f;
  // Weight of the implicit reference column (conductance of w_min): its
  // current is −v_offset_w_min·Σ_j v_j; 0: no reference column.
  float v_offset_w_min = -1.0f;
  // Series resistance of the output lines, in units of 1/(output current):
  // a current c becomes c/(1 + r_series·|c|) (0 = off); with the reference
  // column (v_offset_w_min ≠ 0) the line and reference currents are
  // compressed separately (kernels/cpu/analog_mvm.h has the full formula).
  float r_series = 0.0f;
  // Device-to-device read asymmetry: in the negative-input pass of the
  // POS_NEG_SEPARATE modes every weight reads as W_ij·(1 + w_read_asymmetry_dtod·ξ_ij),
  // ξ_ij drawn once per tile (no effect in ONE_PASS).
  float w_read_asymmetry_dtod = 0.0f;

  // Bound management strategy (ADC saturation handling).
  BoundManagementType bound_management = BoundManagementType::Iterative;
  // Noise management strategy (input scaling α).
  NoiseManagementType noise_management = NoiseManagementType::AbsMax;
  // CONSTANT: the α value; ABS_MAX/MAX/ABS_MAX_NP_SUM: cap on α when > 0.
  float nm_thres = 0.0f;

  // Output-referred weight noise strength (units of the output, see w_noise_type).
  float w_noise = 0.0f;
  // Output-referred weight noise model.
  WeightNoiseType w_noise_type = WeightNoiseType::None;

  // IR-drop strength scale (0 = off).
  float ir_drop = 0.0f;
  // Ratio of wire conductance to the maximal device conductance (1/0.35/5e-6).
  float ir_drop_g_ratio = 1.0f / 0.35f / 5e-6f;

  // Bound management stops when the input reduction factor r exceeds this.
  float max_bm_factor = 1000.0f;
  // Bound management stops when r exceeds max_bm_res / (input step size).
  float max_bm_res = 0.25f;
  // The bound test also fails on outputs at the negative bound.
  bool bm_test_negative_bound = true;
};

}  // namespace aimc
