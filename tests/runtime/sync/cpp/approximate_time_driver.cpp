// Differential-test driver: feeds cases to message_filters' ApproximateTime (the real header,
// found on the include path after the stubs) and prints what it publishes and releases.
//
// stdin:  <cases>, then per case: "<n> <queue> <max_interval_ns|-1> <age_penalty> <b_0..b_n-1>
//         <count>" and <count> lines "<stream> <stamp_ns>".
// stdout: per push "A <index>", then "S <id...>" per published set and "D <id>" per message
//         released without being published; "E" after the last push of a case.
#include <cstdio>
#include <iostream>
#include <memory>
#include <set>
#include <vector>

#include "message_filters/synchronizer.hpp"
#include "message_filters/sync_policies/approximate_time.hpp"

static std::set<int> g_published;
static bool g_live = true;

struct Msg
{
  int64_t stamp;
  int id;
  ~Msg()
  {
    if (g_live && g_published.count(id) == 0) {std::printf("D %d\n", id);}
  }
};

namespace message_filters {namespace message_traits {
template<> struct TimeStamp<Msg>
{
  static rclcpp::Time value(const Msg & m) {return rclcpp::Time(m.stamp);}
};
}}

template<typename ... Ms>
struct Runner
{
  using Policy = message_filters::sync_policies::ApproximateTime<Ms...>;
  using Sync = message_filters::Synchronizer<Policy>;
  static constexpr int N = sizeof...(Ms);

  template<std::size_t I>
  static void add_if(Sync & sync, int stream, const std::shared_ptr<Msg const> & m)
  {
    if (static_cast<int>(I) == stream) {
      sync.template add<I>(message_filters::MessageEvent<Msg const>(m));
    }
  }
  template<std::size_t... Is>
  static void add(Sync & sync, int stream, const std::shared_ptr<Msg const> & m,
    std::index_sequence<Is...>)
  {
    (add_if<Is>(sync, stream, m), ...);
  }

  static void run(uint32_t queue, int64_t max_interval, double age, const std::vector<int64_t> & b,
    const std::vector<std::pair<int, int64_t>> & msgs)
  {
    g_published.clear();
    g_live = true;
    {
      Sync sync(queue, [](const std::vector<int> & ids) {
          std::printf("S");
          for (int id : ids) {std::printf(" %d", id); g_published.insert(id);}
          std::printf("\n");
        });
      if (max_interval >= 0) {
        sync.setMaxIntervalDuration(rclcpp::Duration::from_nanoseconds(max_interval));
      }
      sync.setAgePenalty(age);
      for (int i = 0; i < N; ++i) {
        sync.setInterMessageLowerBound(i, rclcpp::Duration::from_nanoseconds(b[i]));
      }
      for (size_t k = 0; k < msgs.size(); ++k) {
        std::printf("A %zu\n", k);
        auto m = std::make_shared<Msg>();
        m->stamp = msgs[k].second;
        m->id = static_cast<int>(k);
        std::shared_ptr<Msg const> cm = m;
        m.reset();
        add(sync, msgs[k].first, cm, std::make_index_sequence<N>{});
      }
      std::printf("E\n");
      g_live = false;
    }
  }
};

int main()
{
  int cases;
  if (!(std::cin >> cases)) {return 1;}
  for (int c = 0; c < cases; ++c) {
    int n; uint32_t queue; int64_t max_interval; double age; size_t count;
    std::cin >> n >> queue >> max_interval >> age;
    std::vector<int64_t> b(n);
    for (auto & x : b) {std::cin >> x;}
    std::cin >> count;
    std::vector<std::pair<int, int64_t>> msgs(count);
    for (auto & m : msgs) {std::cin >> m.first >> m.second;}
    switch (n) {
      case 2: Runner<Msg, Msg>::run(queue, max_interval, age, b, msgs); break;
      case 3: Runner<Msg, Msg, Msg>::run(queue, max_interval, age, b, msgs); break;
      case 4: Runner<Msg, Msg, Msg, Msg>::run(queue, max_interval, age, b, msgs); break;
      case 5: Runner<Msg, Msg, Msg, Msg, Msg>::run(queue, max_interval, age, b, msgs); break;
      default: return 2;
    }
  }
  std::fflush(stdout);
  return 0;
}
