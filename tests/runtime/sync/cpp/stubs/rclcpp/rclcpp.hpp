// Stand-in for rclcpp/rclcpp.hpp, which message_filters' sync policies include instead of
// rclcpp/time.hpp and rclcpp/duration.hpp since message_filters 6.0.6: of rclcpp they use only
// Time and Duration, and of what rclcpp.hpp brings in with them, <array> and <mutex>.
#include <array>
#include <mutex>

#include "rclcpp/time.hpp"
