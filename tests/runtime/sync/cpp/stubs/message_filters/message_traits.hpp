#ifndef FUSIONRT_STUB_MESSAGE_TRAITS_HPP_
#define FUSIONRT_STUB_MESSAGE_TRAITS_HPP_
namespace message_filters {namespace message_traits {template<typename M> struct TimeStamp;}}
#endif
