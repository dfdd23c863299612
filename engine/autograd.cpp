// Autograd engine: recording, iterative topological backward, graph release.
#include "engine/autograd.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "engine/ops.h"

namespace aimc {
namespace {
thread_local bool grad_mode = true;
}  // namespace

bool grad_mode_enabled() { return grad_mode; }

NoGradGuard::NoGradGuard() : previous_(grad_mode) { grad_mode = false; }
NoGradGuard::~NoGradGuard() { grad_mode = previous_; }

Node::~Node() {
  // Unlink the chain behind this node without recursing: move every input
  // node we hold the last reference to onto a local stack and clear it there.
  std::vector<std::shared_ptr<Node>> pending;
  for (auto& e : next)
    if (e.node && e.node.use_count() == 1) pending.push_back(std::move(e.node));
  next.clear();
  backward = nullptr;
  while (!pending.empty()) {
    std::shared_ptr<Node> n = std::move(pending.back());
    pending.pop_back();
    for (auto& e : n->next)
      if (e.node && e.node.use_count() == 1) pending.push_back(std::move(e.node));
    n->next.clear();
    n->backward = nullptr;
  }
}

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!grad_mode) return false;
  for (const auto& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

Tensor record(Tensor output, const char* name, const std::vector<Tensor>& inputs, BackwardFn backward) {
  if (!any_requires_grad(inputs)) return output;
  auto node = std::make_shared<Node>();
  node->name = name;
  node->next.reserve(inputs.size());
  for (const auto& t : inputs) {
    Edge e;
    if (t.defined() && t.requires_grad()) {
      e.shape = t.shape();
      e.dtype = t.dtype();
      if (t.grad_fn()) e.node = t.grad_fn();
      else e.leaf = t.impl_ptr();
    }
    node->next.push_back(std::move(e));
  }
  node->backward = std::move(backward);
  // The output may be a view sharing the input's TensorImpl data; give it its
  // own record.
  auto impl = std::make_shared<TensorImpl>(*output.impl());
  impl->grad.reset();
  impl->requires_grad = true;
  impl->grad_fn = std::move(node);
  return Tensor(std::move(impl));
}

Tensor sum_to_shape(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  const std::int64_t lead = grad.dim() - static_cast<std::int64_t>(shape.size());
  if (lead < 0) throw ShapeError("sum_to_shape: gradient " + shape_str(grad.shape()) +
                                 " has fewer dims than input " + shape_str(shape));
  std::vector<std::int64_t> axes;
  for (std::int64_t d = 0; d < grad.dim(); ++d) {
    if (d < lead) axes.push_back(d);
    else if (shape[d - lead] == 1 && grad.size(d) != 1) axes.push_back(d);
    else if (shape[d - lead] != grad.size(d))
      throw ShapeError("sum_to_shape: gradient " + shape_str(grad.shape()) +
                       " does not broadcast to input " + shape_str(shape));
  }
  Tensor r = axes.empty() ? grad : sum(grad, axes, /*keepdim=*/true);
  return r.reshape(shape);
}

void run_backward(const Tensor& root, const Tensor& grad_output, bool retain_graph) {
  if (!root.requires_grad())
    throw ValueError("backward() on a tensor that does not require grad");
  Tensor seed = grad_output;
  if (!seed.defined()) {
    if (root.numel() != 1)
      throw ShapeError("backward() without a gradient needs a one-element tensor, got " +
                       shape_str(root.shape()));
    seed = Tensor::ones(root.shape(), root.dtype(), root.device());
  } else if (seed.shape() != root.shape()) {
    throw ShapeError("backward(): gradient shape " + shape_str(seed.shape()) + " differs from " +
                     shape_str(root.shape()));
  } else if (seed.dtype() != root.dtype() || seed.device() != root.device()) {
    throw ValueError(std::string("backward(): gradient is ") + dtype_name(seed.dtype()) + " on " +
                     seed.device().str() + " but the tensor is " + dtype_name(root.dtype()) + " on " +
                     root.device().str());
  }
  NoGradGuard no_grad;

  // The first gradient of a leaf becomes its .grad: adopted as it is when no
  // other tensor can see its memory (a fresh result of a backward rule, held
  // only by `g`), else copied, so later accumulation never writes into a
  // tensor someone else holds.
  auto accumulate_leaf = [](const std::shared_ptr<TensorImpl>& leaf, Tensor g) {
    if (leaf->grad) {
      Tensor(leaf->grad).add_(g);
      return;
    }
    const bool private_dense = g.impl_ptr().use_count() == 1 && g.storage().use_count() == 1 &&
                               g.offset() == 0 && g.is_contiguous() &&
                               g.storage()->bytes() == static_cast<std::size_t>(g.numel()) * dtype_size(g.dtype());
    leaf->grad = (private_dense ? g.detach() : g.contiguous().clone()).impl_ptr();
  };

  if (!root.grad_fn()) {  // a leaf
    accumulate_leaf(root.impl_ptr(), seed);
    return;
  }

  // Iterative post-order DFS gives a topological order (inputs before users).
  std::vector<Node*> order;
  std::unordered_set<Node*> visited;
  std::vector<std::pair<Node*, std::size_t>> stack;
  stack.emplace_back(root.grad_fn().get(), 0);
  visited.insert(root.grad_fn().get());
  while (!stack.empty()) {
    auto& [node, i] = stack.back();
    if (!node->backward && i == 0)
      throw ValueError("backward() through a graph that was already freed (use retain_graph)");
    if (i < node->next.size()) {
      Node* child = node->next[i].node.get();
      ++i;
      if (child && visited.insert(child).second) stack.emplace_back(child, 0);
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }

  std::unordered_map<Node*, Tensor> grads;
  grads[root.grad_fn().get()] = seed;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = *it;
    auto found = grads.find(node);
    if (found == grads.end()) continue;  // no gradient flows here
    Tensor g = std::move(found->second);
    grads.erase(found);
    std::vector<Tensor> input_grads = node->backward(g);
    if (input_grads.size() != node->next.size())
      throw Error(std::string("internal: backward of ") + node->name + " returned " +
                  std::to_string(input_grads.size()) + " gradients for " +
                  std::to_string(node->next.size()) + " inputs");
    for (std::size_t k = 0; k < node->next.size(); ++k) {
      const Edge& e = node->next[k];
      if (!e.wanted() || !input_grads[k].defined()) continue;
      Tensor gk = std::move(input_grads[k]);
      if (gk.shape() != e.shape) gk = sum_to_shape(gk, e.shape);
      if (e.node) {
        auto slot = grads.find(e.node.get());
        if (slot == grads.end()) grads.emplace(e.node.get(), std::move(gk));
        else slot->second = add(slot->second, gk);
      } else {
        accumulate_leaf(e.leaf, std::move(gk));
      }
    }
  }
  if (!retain_graph) {
    // Move the edges out first so that no node dies while we walk `order`;
    // the nodes then die here with empty edge lists (no recursion). The root
    // keeps its (now empty) node, so a second backward reports a freed graph.
    std::vector<std::shared_ptr<Node>> released;
    for (Node* node : order) {
      node->backward = nullptr;
      for (auto& e : node->next)
        if (e.node) released.push_back(std::move(e.node));
      node->next.clear();
    }
  }
}

}  // namespace aimc
