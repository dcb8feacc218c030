// Minimal stand-ins for MessageEvent, PolicyBase and Synchronizer: just enough to drive a
// message_filters sync policy from a test program. Messages must have an int `id` member.
#ifndef FUSIONRT_STUB_SYNCHRONIZER_HPP_
#define FUSIONRT_STUB_SYNCHRONIZER_HPP_
#include <array>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace message_filters
{
template<typename M>
class MessageEvent
{
public:
  using Message = std::remove_const_t<M>;
  MessageEvent() = default;
  explicit MessageEvent(std::shared_ptr<M> m) : m_(std::move(m)) {}
  const std::shared_ptr<M> & getMessage() const {return m_;}

private:
  std::shared_ptr<M> m_;
};

template<typename ... Ms>
struct PolicyBase
{
  static constexpr std::size_t N_MESSAGES = sizeof...(Ms);
  using Messages = std::tuple<Ms...>;
  using Events = std::tuple<MessageEvent<Ms const>...>;
  using Signal = int;
};

template<class Policy>
class Synchronizer : public Policy
{
public:
  using Callback = std::function<void(const std::vector<int> &)>;
  Synchronizer(uint32_t queue_size, Callback cb) : Policy(queue_size), cb_(std::move(cb))
  {
    this->initParent(this);
  }
  template<typename ... Args>
  void signal(const Args &... args)
  {
    std::vector<int> ids{args.getMessage()->id...};
    cb_(ids);
  }

private:
  Callback cb_;
};
}  // namespace message_filters
#endif
