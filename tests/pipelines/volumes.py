"""`kfp.kubernetes` volumes and namespace objects: a PVC made by CreatePVC, written by one
step and read by the next, then deleted; a Secret and a ConfigMap as variables and files;
memory-backed scratch space. Run with host processes and with `--executor docker`."""
from kfp import dsl, kubernetes

RUNTIME = "kfbox/runtime:latest"


@dsl.component(base_image=RUNTIME)
def write(note: str) -> str:
    import os

    with open("/data/note.txt", "w") as f:
        f.write(note)
    with open("/scratch/left-behind.txt", "w") as f:
        f.write("scratch")
    # What backs the scratch space: a tmpfs in a container (medium Memory).
    with open("/proc/self/mounts") as f:
        kinds = [line.split()[2] for line in f if line.split()[1] == "/scratch"]
    return kinds[-1] if kinds else "none"


@dsl.component(base_image=RUNTIME)
def read() -> str:
    import os

    from_env = os.environ["DB_PASSWORD"]
    with open("/etc/db/password") as f:
        from_file = f.read()
    print(f"the password is {from_env}")
    with open("/etc/settings/mode") as f:
        mode_file = f.read()
    with open("/data/note.txt") as f:
        note = f.read()
    return "|".join(
        [note, str(from_env == from_file), os.environ["MODE"], mode_file, str(os.listdir("/scratch"))]
    )


@dsl.pipeline(name="volumes")
def pipeline(secret: str, settings: str) -> str:
    claim = kubernetes.CreatePVC(pvc_name_suffix="-notes", access_modes=["ReadWriteOnce"], size="1Gi")
    first = write(note="hello from write")
    kubernetes.mount_pvc(first, pvc_name=claim.outputs["name"], mount_path="/data")
    kubernetes.empty_dir_mount(first, volume_name="scratch", mount_path="/scratch", medium="Memory", size_limit="16Mi")
    second = read().after(first)
    kubernetes.mount_pvc(second, pvc_name=claim.outputs["name"], mount_path="/data")
    kubernetes.empty_dir_mount(second, volume_name="scratch", mount_path="/scratch")
    kubernetes.use_secret_as_env(second, secret_name=secret, secret_key_to_env={"password": "DB_PASSWORD"})
    kubernetes.use_secret_as_volume(second, secret_name=secret, mount_path="/etc/db")
    kubernetes.use_config_map_as_env(second, config_map_name=settings, config_map_key_to_env={"mode": "MODE"})
    kubernetes.use_config_map_as_volume(second, config_map_name=settings, mount_path="/etc/settings")
    kubernetes.DeletePVC(pvc_name=claim.outputs["name"]).after(second)
    return second.output
