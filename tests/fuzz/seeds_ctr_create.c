/* Writes a seed corpus for fuzz_ctr_create into the directory argv[1]: create bodies as
 * the docker CLI and compose send them, with an image config under "ImageConfig". */
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name, *text;
} seeds[] = {
    { "run",
      "{\"Hostname\":\"\",\"User\":\"\",\"AttachStdout\":true,\"Tty\":false,\"Env\":[\"A=1\"],\"Cmd\":[\"sh\",\"-c\",\"echo hi\"],\"Image\":\"busybox\",\"WorkingDir\":\"/data\",\"Entrypoint\":null,\"Labels\":{\"a\":\"b\"},\"StopSignal\":\"SIGTERM\",\"StopTimeout\":5,\"HostConfig\":{\"Binds\":[\"/srv:/srv:ro\",\"vol:/v\",\"/anon\"],\"NetworkMode\":\"default\",\"RestartPolicy\":{\"Name\":\"on-failure\",\"MaximumRetryCount\":3},\"AutoRemove\":false,\"Memory\":16777216,\"NanoCpus\":500000000,\"PidsLimit\":64,\"CapAdd\":[\"NET_ADMIN\"],\"CapDrop\":[\"ALL\"],\"Tmpfs\":{\"/run\":\"rw,noexec,size=64m\"}},\"ImageConfig\":{\"Env\":[\"PATH=/bin\"],\"Cmd\":[\"sh\"],\"User\":\"nobody\",\"Volumes\":{\"/data\":{}},\"Labels\":{\"x\":\"y\"}}}" },
    { "mounts",
      "{\"Image\":\"img\",\"Hostname\":\"web-1.example\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"bind\",\"Source\":\"/tmp\",\"Target\":\"/t\",\"ReadOnly\":true,\"BindOptions\":{\"Propagation\":\"rslave\"}},{\"Type\":\"volume\",\"Source\":\"data\",\"Target\":\"/d\",\"VolumeOptions\":{\"NoCopy\":true}},{\"Type\":\"tmpfs\",\"Target\":\"/tm\",\"TmpfsOptions\":{\"SizeBytes\":1048576,\"Mode\":1777}}],\"PidsLimit\":-1},\"Name\":\"web_1\"}" },
    { "entrypoint",
      "{\"Image\":\"img\",\"Entrypoint\":[\"\"],\"Cmd\":null,\"Tty\":true,\"OpenStdin\":true,\"HostConfig\":{\"CpuPeriod\":100000,\"CpuQuota\":50000,\"MemorySwap\":-1,\"RestartPolicy\":{\"Name\":\"always\"}},\"ImageConfig\":{\"Entrypoint\":[\"/entry\"],\"WorkingDir\":\"/w\",\"StopSignal\":\"9\"}}" },
};

static int write_seed(const char *dir, const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    size_t n = strlen(text);
    if (f == NULL || fwrite(text, 1, n, f) != n) {
        perror(path);
        if (f != NULL)
            fclose(f);
        return 1;
    }
    return fclose(f) != 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    int rc = 0;
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
        rc |= write_seed(argv[1], seeds[i].name, seeds[i].text);
    return rc;
}
