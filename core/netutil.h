/* Network helpers shared by drivers and the CLI. */
#ifndef MACHINE_NETUTIL_H
#define MACHINE_NETUTIL_H

#include <stdbool.h>

#include "cleanup.h"

struct merr;

/* Connects to host:port within timeout_ms; returns the connected fd (blocking mode).
 * MERR_TIMEOUT when the bound passes, MERR_UNREACHABLE when refused/unroutable. */
int net_dial(const char *host, int port, int timeout_ms, struct merr *err) MUST_CHECK;

/* true if text is a literal IPv4 or IPv6 address. */
bool net_is_ip(const char *text);

/* Splits "tcp://host:port" (host may be [v6]); host malloc'd. */
int net_parse_tcp_url(const char *url, char **host, int *port, struct merr *err) MUST_CHECK;

#endif
