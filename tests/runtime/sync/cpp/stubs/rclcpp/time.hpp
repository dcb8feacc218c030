// Minimal stand-in for rclcpp::Time / rclcpp::Duration with rclcpp's arithmetic (int64
// nanoseconds; Duration * double computed in long double and truncated toward zero). Written for
// fusionrt's differential test of ApproximateTimePolicy against message_filters' C++ header.
#ifndef FUSIONRT_STUB_RCLCPP_TIME_HPP_
#define FUSIONRT_STUB_RCLCPP_TIME_HPP_
#include <cmath>
#include <cstdint>
#include <stdexcept>

namespace rclcpp
{
class Duration
{
public:
  Duration(int32_t seconds, uint32_t nanoseconds)
  : ns_(static_cast<int64_t>(seconds) * 1000000000LL + nanoseconds) {}
  static Duration from_nanoseconds(int64_t ns) {Duration d(0, 0); d.ns_ = ns; return d;}
  int64_t nanoseconds() const {return ns_;}
  Duration operator*(double scale) const
  {
    if (!std::isfinite(scale)) {throw std::runtime_error("abnormal scale");}
    long double scale_ld = static_cast<long double>(scale);
    return from_nanoseconds(static_cast<int64_t>(static_cast<long double>(ns_) * scale_ld));
  }
  bool operator<(const Duration & o) const {return ns_ < o.ns_;}
  bool operator<=(const Duration & o) const {return ns_ <= o.ns_;}
  bool operator>(const Duration & o) const {return ns_ > o.ns_;}
  bool operator>=(const Duration & o) const {return ns_ >= o.ns_;}
  bool operator==(const Duration & o) const {return ns_ == o.ns_;}

private:
  int64_t ns_;
};

class Time
{
public:
  Time() : ns_(0) {}
  explicit Time(int64_t ns) : ns_(ns) {}
  int64_t nanoseconds() const {return ns_;}
  Duration operator-(const Time & o) const {return Duration::from_nanoseconds(ns_ - o.ns_);}
  Time operator+(const Duration & d) const {return Time(ns_ + d.nanoseconds());}
  bool operator<(const Time & o) const {return ns_ < o.ns_;}
  bool operator<=(const Time & o) const {return ns_ <= o.ns_;}
  bool operator>(const Time & o) const {return ns_ > o.ns_;}
  bool operator>=(const Time & o) const {return ns_ >= o.ns_;}
  bool operator==(const Time & o) const {return ns_ == o.ns_;}

private:
  int64_t ns_;
};
}  // namespace rclcpp
#endif
