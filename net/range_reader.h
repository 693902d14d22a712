// RangeReader: the real transport's path for long ranges (internal to net/; net/NET.md "The
// range reader").
//
// A long range (ExchangeSpec::own_connection: 1 MiB or more, on a connection of its own) is
// the bulk of every byte a pull moves. Through libcurl each of those bytes is received into
// libcurl's buffer and copied from there into the window's blocks (engine/transfer_state.h):
// libcurl has no way to receive into the caller's memory. This transport speaks HTTP/1.1
// itself for such an exchange, over connections of its own (plain TCP, or TLS through
// OpenSSL with the CAs and host checks libcurl would apply), and receives the body with
// recv() / SSL_read() straight into the memory the handler lends (ExchangeHandler::
// BodySpaceFor): one copy per byte fewer, and libcurl's own bookkeeping per read gone.
//
// It takes only what it can do exactly and leaves everything else to `other` (libcurl):
//  - an exchange through a proxy, a HEAD, an API call (accept_json), a URL with credentials,
//    or any exchange that does not want a connection of its own goes to `other` untouched;
//  - a response whose body is not delimited by Content-Length (chunked, or ended by the
//    connection closing) is asked again through `other` before the handler sees anything
//    (one more round trip for a reply no hub or CDN sends to a range request).
// Redirects, identity checks, retries and the rate limit stay in Request, as for any
// transport. Connections are kept alive per origin (scheme, host, port) between exchanges,
// at most max_connections idle; a kept one the server closed meanwhile is replaced once,
// unseen by the handler. Connect timeout (resolution, TCP and TLS handshake together) and
// stall timeout as ExchangeSpec says; the head of a response is capped at 64 KiB.
//
// Thread safety: as any Transport (the loop thread only).
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>

#include "net/transport.h"

namespace modelsync::net {

std::unique_ptr<Transport> MakeRangeReader(boost::asio::io_context& io, int max_connections,
                                           std::unique_ptr<Transport> other);

}  // namespace modelsync::net
