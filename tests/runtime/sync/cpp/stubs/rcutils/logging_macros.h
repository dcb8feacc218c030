#define RCUTILS_LOG_WARN_ONCE(...) do {} while (0)
