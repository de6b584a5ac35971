/* Writes a seed corpus for fuzz_api_request into the directory argv[1]: requests as
 * the docker CLI sends them (keep-alive, pipelined, chunked, a streamed body, an upgrade). */
#include "seeds_text.h"

static const struct text_seed seeds[] = {
    { "ping",
      "GET /_ping HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: Docker-Client/28.2.2 (linux)\r\n\r\n" },
    { "inspect",
      "GET /v1.45/containers/web%2F1/json?all=1&n=3&filters=%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D HTTP/1.1\r\nHost: x\r\nX-Registry-Auth: e30=\r\n\r\n" },
    { "create",
      "POST /v1.45/containers/create?name=web HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 38\r\n\r\n{\"Image\":\"busybox\",\"Cmd\":[\"true\"],\"A\":1}" },
    { "pipelined",
      "GET /_ping HTTP/1.1\r\nHost: x\r\n\r\nGET /v1.99/containers/a/json HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" },
    { "chunked",
      "POST /images/load?quiet=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-tar\r\n\r\n5\r\nhello\r\n0\r\n\r\n" },
    { "upgrade",
      "POST /v1.45/exec/abc/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"Detach\":true}" },
    { "http10",
      "GET /v1.24/containers/x/json HTTP/1.0\r\n\r\n" },
};

int main(int argc, char **argv)
{
    return seeds_main(argc, argv, seeds, sizeof seeds / sizeof seeds[0]);
}
