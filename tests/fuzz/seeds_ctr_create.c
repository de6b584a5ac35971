/* Writes a seed corpus for fuzz_ctr_create into the directory argv[1]: create bodies as
 * the docker CLI and compose send them, with an image config under "ImageConfig". */
#include "seeds_text.h"

static const struct text_seed seeds[] = {
    { "run",
      "{\"Hostname\":\"\",\"User\":\"\",\"AttachStdout\":true,\"Tty\":false,\"Env\":[\"A=1\"],\"Cmd\":[\"sh\",\"-c\",\"echo hi\"],\"Image\":\"busybox\",\"WorkingDir\":\"/data\",\"Entrypoint\":null,\"Labels\":{\"a\":\"b\"},\"StopSignal\":\"SIGTERM\",\"StopTimeout\":5,\"HostConfig\":{\"Binds\":[\"/srv:/srv:ro\",\"vol:/v\",\"/anon\"],\"NetworkMode\":\"default\",\"RestartPolicy\":{\"Name\":\"on-failure\",\"MaximumRetryCount\":3},\"AutoRemove\":false,\"Memory\":16777216,\"NanoCpus\":500000000,\"PidsLimit\":64,\"CapAdd\":[\"NET_ADMIN\"],\"CapDrop\":[\"ALL\"],\"Tmpfs\":{\"/run\":\"rw,noexec,size=64m\"}},\"ImageConfig\":{\"Env\":[\"PATH=/bin\"],\"Cmd\":[\"sh\"],\"User\":\"nobody\",\"Volumes\":{\"/data\":{}},\"Labels\":{\"x\":\"y\"}}}" },
    { "mounts",
      "{\"Image\":\"img\",\"Hostname\":\"web-1.example\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"bind\",\"Source\":\"/tmp\",\"Target\":\"/t\",\"ReadOnly\":true,\"BindOptions\":{\"Propagation\":\"rslave\"}},{\"Type\":\"volume\",\"Source\":\"data\",\"Target\":\"/d\",\"VolumeOptions\":{\"NoCopy\":true}},{\"Type\":\"tmpfs\",\"Target\":\"/tm\",\"TmpfsOptions\":{\"SizeBytes\":1048576,\"Mode\":1777}}],\"PidsLimit\":-1},\"Name\":\"web_1\"}" },
    { "entrypoint",
      "{\"Image\":\"img\",\"Entrypoint\":[\"\"],\"Cmd\":null,\"Tty\":true,\"OpenStdin\":true,\"HostConfig\":{\"CpuPeriod\":100000,\"CpuQuota\":50000,\"MemorySwap\":-1,\"RestartPolicy\":{\"Name\":\"always\"}},\"ImageConfig\":{\"Entrypoint\":[\"/entry\"],\"WorkingDir\":\"/w\",\"StopSignal\":\"9\"}}" },
};

int main(int argc, char **argv)
{
    return seeds_main(argc, argv, seeds, sizeof seeds / sizeof seeds[0]);
}
