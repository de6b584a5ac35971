/* Command lines around the system ssh client (pure): the ssh options a user puts before the
 * command of `machine ssh`, and the rsync and sshfs invocations derived from machine's own ssh
 * argv (ssh_external_argv: key, port, pinned known_hosts, strict host key checking). */
#ifndef MACHINE_CLI_SSHCMD_H
#define MACHINE_CLI_SSHCMD_H

#include <stddef.h>

#include "cleanup.h"

/* How many leading words are ssh options (with the value of those that take one, as OpenSSH's
 * getopt string says), e.g. {"-L", "8080:localhost:80", "-N"} → 3; {"ls", "-l"} → 0. A "--"
 * ends them (not counted). An option missing its value is not counted. */
size_t ssh_option_words(char *const *words);

/* Index of the destination (user@host) in an ssh argv whose options all take a value. */
size_t ssh_argv_destination(char *const *ssh_argv);

/* ssh_argv with extra options inserted right before the destination (after machine's own, so
 * for -o settings given twice machine's come first and win). NULL-terminated, malloc'd. */
char **ssh_argv_with_options(char *const *ssh_argv, char *const *extra, size_t n_extra);

/* The command for rsync's -e: ssh_argv up to the destination, each word single-quoted. */
char *rsync_rsh(char *const *ssh_argv);

/* "user@host:path" ("user@[v6]:path"), as rsync and sshfs take a remote path. */
char *remote_spec(const char *user, const char *host, const char *path);

/* sshfs SOURCE MOUNTPOINT -p PORT -o IdentityFile=KEY -o <every -o of ssh_argv>, the -o values
 * escaped for libfuse's option parser. */
char **sshfs_argv(char *const *ssh_argv, const char *source, const char *mountpoint);

#endif
