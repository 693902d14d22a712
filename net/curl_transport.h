// CurlTransport: the real Transport, libcurl's multi interface on the Hub's loop (internal to
// net/). One easy handle per exchange, connections reused and, over TLS, HTTP/2-multiplexed
// across exchanges; driven by CurlMulti (net/curl_multi.h).
//
// Headers are parsed as they arrive; the handler sees the final (non-1xx) head when its
// blank line is in (1xx heads and a proxy's CONNECT answer never reach it). A kPause answer
// becomes CURL_WRITEFUNC_PAUSE (libcurl hands the same bytes again after Unpause). The
// stall timeout is libcurl's low-speed check (< 1 byte/s for whole seconds; a paused transfer
// is exempt).
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>

#include "net/transport.h"

namespace modelsync::net {

// The real transport: libcurl, with the long ranges read by the range reader
// (net/range_reader.h) in front of it.
std::unique_ptr<Transport> MakeCurlTransport(boost::asio::io_context& io, int max_connections);

}  // namespace modelsync::net
