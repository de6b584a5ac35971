/* A UDP echo server for tests that run it inside a container whose image has no UDP tool
 * (busybox-static's nc is TCP only). Usage: udp-echo PORT. Answers every datagram with
 * "echo:" and the datagram, from the same port; exits after 300 s or 1000 datagrams.
 * Built statically by the test that copies it in (docker cp). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: udp-echo PORT\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])) };
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("udp-echo: bind");
        return 1;
    }
    struct timeval tv = { .tv_sec = 1 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    time_t end = time(NULL) + 300;
    for (int n = 0; n < 1000 && time(NULL) < end;) {
        char buf[1500], out[1510];
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t got = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (got < 0)
            continue;
        n++;
        memcpy(out, "echo:", 5);
        memcpy(out + 5, buf, (size_t)got);
        sendto(fd, out, (size_t)got + 5, 0, (struct sockaddr *)&from, fl);
    }
    return 0;
}
