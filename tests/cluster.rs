//! `kfbox cluster` against the real Docker daemon. No k3s image can be pulled here, so the node
//! runs `tests/cluster/stand-in-k3s`, a stand-in named as such that honours the part of k3s's
//! contract kfbox relies on (arguments, state directory, image directory, kubeconfig output,
//! the ready line). The container spec is checked by inspection; all traffic stays on
//! loopback. The node runs with every capability but SYS_RESOURCE (`--privileged` fails on
//! this machine); the product default stays `--privileged`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use kfbox_app::json::ClusterStatus;
use serde_json::Value;

use crate::common::repo_root;
use crate::common::served::{kfbox_in, new_home};

const STAND_IN: &str = "kfbox-test/k3s-stand-in";

/// The stand-in node image in one mode (`ready`, `crash`, `silent`), built once from the
/// Debian base image the Docker tests use.
fn stand_in(mode: &str) -> String {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        for mode in ["ready", "crash", "silent"] {
            let context = tempfile::tempdir().unwrap();
            fs_err::copy(
                repo_root().join("tests/cluster/stand-in-k3s"),
                context.path().join("k3s"),
            )
            .unwrap();
            fs_err::write(context.path().join("mode"), format!("{mode}\n")).unwrap();
            fs_err::write(
                context.path().join("Dockerfile"),
                "FROM kfbox/base:bookworm\nCOPY k3s /bin/k3s\nCOPY mode /stand-in-mode\n",
            )
            .unwrap();
            let built = docker(&["build", "-q", "-t", &format!("{STAND_IN}:{mode}")])
                .arg(context.path())
                .env("DOCKER_BUILDKIT", "0")
                .output()
                .unwrap();
            assert!(
                built.status.success(),
                "building the stand-in: {}",
                String::from_utf8_lossy(&built.stderr)
            );
        }
    });
    format!("{STAND_IN}:{mode}")
}

fn docker(args: &[&str]) -> Command {
    let mut command = Command::new("docker");
    command.args(args);
    command
}

fn inspect(what: &str) -> Option<Value> {
    let out = docker(&["inspect", what]).output().unwrap();
    out.status
        .success()
        .then(|| serde_json::from_slice::<Value>(&out.stdout).unwrap()[0].clone())
}

/// A cluster of a name of its own in a home of its own, removed when dropped.
struct TestCluster {
    name: String,
    home: tempfile::TempDir,
    config: PathBuf,
}

impl TestCluster {
    fn new(tag: &str) -> Self {
        let home = new_home();
        let config = home.path().join("test-kfbox.toml");
        fs_err::write(
            &config,
            "[cluster]\ndrop_capabilities = [\"SYS_RESOURCE\"]\n",
        )
        .unwrap();
        let name = format!("t{}-{tag}", std::process::id());
        Self { name, home, config }
    }

    /// `kfbox cluster ARGS --name NAME`. The stand-in node has no Kubernetes API, so `up`
    /// starts the node only: the install is tested by its dry run (below), the kfp-install
    /// crate's tests, and tests/cluster-e2e.sh on a real k3s.
    fn kfbox(&self, args: &[&str]) -> Output {
        let config = self.config.to_str().unwrap();
        let mut all = vec!["--config", config, "cluster"];
        all.extend_from_slice(args);
        if args.first() == Some(&"up") {
            all.push("--no-kfp");
        }
        all.extend_from_slice(&["--name", &self.name]);
        kfbox_in(self.home.path(), &all).output().unwrap()
    }

    fn container(&self) -> String {
        format!("kfbox-cluster-{}", self.name)
    }

    fn volume(&self) -> String {
        format!("kfbox-cluster-{}-data", self.name)
    }

    fn kubeconfig(&self) -> PathBuf {
        self.home
            .path()
            .join("clusters")
            .join(&self.name)
            .join("kubeconfig.yaml")
    }

    fn boots(&self) -> String {
        let out = docker(&[
            "exec",
            &self.container(),
            "cat",
            "/var/lib/rancher/k3s/server/boots",
        ])
        .output()
        .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let _ = self.kfbox(&["down"]);
    }
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn cluster_up_runs_the_node_as_specified_restarts_keep_its_data_and_down_removes_it() {
    let image = stand_in("ready");
    let cluster = TestCluster::new("life");
    // A bundle of no images but an archive k3s would see (the bundle test makes real ones).
    let bundle = tempfile::tempdir().unwrap();
    fs_err::create_dir_all(bundle.path().join("k3s")).unwrap();
    fs_err::write(bundle.path().join("k3s/kfp-images.tar.zst"), b"not really").unwrap();
    fs_err::write(
        bundle.path().join("manifest.json"),
        r#"{"version": 1, "images": []}"#,
    )
    .unwrap();
    let out = ok(&cluster.kfbox(&[
        "up",
        "--image",
        &image,
        "--bundle",
        bundle.path().to_str().unwrap(),
        "--timeout",
        "60",
    ]));
    let api = out
        .lines()
        .find_map(|l| l.strip_prefix("Kubernetes API: "))
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    assert!(api.starts_with("https://127.0.0.1:"), "{api}");

    // The container as Docker holds it.
    let node = inspect(&cluster.container()).expect("the node container");
    let host = &node["HostConfig"];
    assert!(host["Tmpfs"].get("/run").is_some() && host["Tmpfs"].get("/var/run").is_some());
    assert_eq!(host["CapAdd"], serde_json::json!(["ALL"]));
    assert_eq!(host["CapDrop"], serde_json::json!(["SYS_RESOURCE"]));
    assert_eq!(host["RestartPolicy"]["Name"], "unless-stopped");
    let bindings = node["NetworkSettings"]["Ports"]["6443/tcp"]
        .as_array()
        .unwrap();
    assert!(!bindings.is_empty());
    for binding in bindings {
        assert_eq!(binding["HostIp"], "127.0.0.1", "{bindings:?}");
        assert_eq!(
            api,
            format!(
                "https://127.0.0.1:{}",
                binding["HostPort"].as_str().unwrap()
            )
        );
    }
    let mounts = node["Mounts"].as_array().unwrap();
    let mount = |target: &str| {
        mounts
            .iter()
            .find(|m| m["Destination"] == target)
            .unwrap_or_else(|| panic!("no mount at {target}: {mounts:?}"))
    };
    assert_eq!(mount("/var/lib/rancher/k3s")["Name"], cluster.volume());
    let images = mount("/var/lib/rancher/k3s/agent/images");
    assert_eq!(images["Type"], "bind");
    assert_eq!(images["RW"], false);
    assert_eq!(
        node["Config"]["Labels"]["io.kfbox.cluster"],
        cluster.name.as_str()
    );
    let cmd: Vec<&str> = node["Config"]["Cmd"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(cmd[0], "server");
    assert!(
        cmd.contains(&"--disable=traefik,servicelb,metrics-server"),
        "{cmd:?}"
    );
    let volume = inspect(&cluster.volume()).expect("the data volume");
    assert_eq!(volume["Labels"]["io.kfbox.cluster"], cluster.name.as_str());
    // k3s saw the bundle where it imports images from.
    let logs = docker(&["logs", &cluster.container()]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&logs.stdout)
            .contains("would import images from kfp-images.tar.zst"),
        "{}",
        String::from_utf8_lossy(&logs.stdout)
    );

    // The kubeconfig, rewritten for the host.
    let kubeconfig: Value =
        crate::common::yaml_value(&fs_err::read_to_string(cluster.kubeconfig()).unwrap());
    assert_eq!(kubeconfig["clusters"][0]["cluster"]["server"], api.as_str());
    assert_eq!(kubeconfig["current-context"], cluster.name.as_str());
    use std::os::unix::fs::PermissionsExt;
    let mode = fs_err::metadata(cluster.kubeconfig())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let status: ClusterStatus =
        serde_json::from_str(&ok(&cluster.kfbox(&["status", "--json"]))).unwrap();
    let state = status.node.expect("a node");
    assert_eq!(state.state, "running");
    assert_eq!(state.api_server.as_deref(), Some(api.as_str()));
    // The stand-in serves no Kubernetes API: the components are unknown, and status says why.
    assert!(status.kfp.is_none());
    let why = status.kfp_error.expect("a reason");
    assert!(!why.is_empty());
    let human = ok(&cluster.kfbox(&["status"]));
    assert!(
        human.contains(&format!("Kubeflow Pipelines: unknown ({why})")),
        "{human}"
    );

    // Settings fixed at creation cannot change under a running node: said, not ignored.
    let stderr = failed(&cluster.kfbox(&["up", "--image", &image]));
    assert!(stderr.contains("bundle "), "{stderr}");
    assert!(stderr.contains("down --keep-data"), "{stderr}");
    // Up again: the running node is reused; stopped, it starts again with its data.
    let bundle_arg = bundle.path().to_str().unwrap().to_owned();
    let again = [
        "up",
        "--image",
        &image,
        "--bundle",
        &bundle_arg,
        "--timeout",
        "60",
    ];
    assert!(ok(&cluster.kfbox(&again)).contains(&api));
    assert_eq!(cluster.boots(), "1");
    assert!(docker(&["stop", "-t", "5", &cluster.container()])
        .status()
        .unwrap()
        .success());
    ok(&cluster.kfbox(&again));
    assert_eq!(cluster.boots(), "2");

    // Down keeping the data, up again: the state survives a new container.
    ok(&cluster.kfbox(&["down", "--keep-data"]));
    assert!(inspect(&cluster.container()).is_none());
    assert!(inspect(&cluster.volume()).is_some());
    ok(&cluster.kfbox(&["up", "--image", &image, "--timeout", "60"]));
    assert_eq!(cluster.boots(), "3");

    // Down removes everything, and is idempotent.
    let removed = ok(&cluster.kfbox(&["down"]));
    assert!(
        removed.contains(&cluster.container()) && removed.contains(&cluster.volume()),
        "{removed}"
    );
    assert!(inspect(&cluster.container()).is_none());
    assert!(inspect(&cluster.volume()).is_none());
    assert!(ok(&cluster.kfbox(&["down"])).contains("no cluster to remove"));
    let gone = cluster.kfbox(&["status"]);
    assert_eq!(gone.status.code(), Some(1));
}

#[test]
fn a_node_that_crashes_or_stays_silent_is_reported_with_its_last_lines() {
    let crash = TestCluster::new("crash");
    let stderr = failed(&crash.kfbox(&["up", "--image", &stand_in("crash"), "--timeout", "60"]));
    assert!(
        stderr.contains("stopped before it was ready (exit code 3)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("failing before ready, as asked"),
        "{stderr}"
    );
    let silent = TestCluster::new("silent");
    let stderr = failed(&silent.kfbox(&["up", "--image", &stand_in("silent"), "--timeout", "3"]));
    assert!(stderr.contains("was not ready within 3 s"), "{stderr}");
    assert!(stderr.contains("boot 1"), "{stderr}");
    assert!(stderr.contains("kfbox cluster down"), "{stderr}");
}

#[test]
fn kubeconfig_merges_the_cluster_context_and_keeps_the_others() {
    let cluster = TestCluster::new("kube");
    ok(&cluster.kfbox(&["up", "--image", &stand_in("ready"), "--timeout", "60"]));
    let dir = tempfile::tempdir().unwrap();
    let user = dir.path().join("config");
    fs_err::write(
        &user,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster: {server: 'https://prod.example:6443'}\nusers:\n- name: prod\n  user: {token: t}\ncontexts:\n- name: prod\n  context: {cluster: prod, user: prod}\ncurrent-context: prod\n",
    )
    .unwrap();
    let config = cluster.config.to_str().unwrap().to_owned();
    let merged = kfbox_in(
        cluster.home.path(),
        &[
            "--config",
            &config,
            "cluster",
            "kubeconfig",
            "--name",
            &cluster.name,
        ],
    )
    .env(
        "KUBECONFIG",
        format!("{}:/nonexistent/other", user.display()),
    )
    .output()
    .unwrap();
    ok(&merged);
    let doc = crate::common::yaml_value(&fs_err::read_to_string(&user).unwrap());
    let contexts: Vec<&str> = doc["contexts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(contexts, ["prod", cluster.name.as_str()]);
    assert_eq!(doc["current-context"], cluster.name.as_str());
    assert_eq!(
        doc["clusters"][0]["cluster"]["server"],
        "https://prod.example:6443"
    );
    let printed = ok(&cluster.kfbox(&["kubeconfig", "--print"]));
    assert!(printed.contains("server: https://127.0.0.1:"), "{printed}");
}

#[test]
fn cluster_up_refuses_what_it_cannot_use_before_touching_docker_state() {
    let cluster = TestCluster::new("refuse");
    let stderr = failed(&cluster.kfbox(&["up", "--image", "kfbox-test/not-here:1"]));
    assert!(
        stderr.contains("kfbox-test/not-here:1 is not here"),
        "{stderr}"
    );
    assert!(stderr.contains("kfbox cluster bundle"), "{stderr}");
    assert!(inspect(&cluster.volume()).is_none());
    let stderr = failed(&cluster.kfbox(&["up", "--gpus", "some"]));
    assert!(stderr.contains("--gpus some"), "{stderr}");
    let stderr = failed(&cluster.kfbox(&["up", "--gpus", "all"]));
    assert!(
        stderr.contains("kfbox/k3s-gpu:v1.35.5-k3s1 is not here")
            && stderr.contains("kfbox images build-gpu-node"),
        "{stderr}"
    );
    let stderr = failed(&cluster.kfbox(&["up", "--bundle", "/definitely/missing"]));
    assert!(stderr.contains("/definitely/missing"), "{stderr}");
    let bad = kfbox_in(
        cluster.home.path(),
        &["cluster", "status", "--name", "../x"],
    )
    .output()
    .unwrap();
    assert!(failed(&bad).contains("a cluster name is"));
    // --dry-run prints the container and creates nothing; the default is --privileged.
    let plan: Value = serde_json::from_str(&ok(&kfbox_in(
        cluster.home.path(),
        &[
            "cluster",
            "up",
            "--dry-run",
            "--json",
            "--gpus",
            "2",
            "--name",
            &cluster.name,
        ],
    )
    .output()
    .unwrap()))
    .unwrap();
    let host = &plan["node"]["body"]["HostConfig"];
    assert_eq!(host["Privileged"], true);
    // GPUs default to the node image `kfbox images build-gpu-node` makes, with the plugin.
    assert_eq!(plan["node"]["body"]["Image"], "kfbox/k3s-gpu:v1.35.5-k3s1");
    assert!(plan["objects"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["kind"] == "DaemonSet"
            && o["metadata"]["name"] == "nvidia-device-plugin-daemonset"));
    assert_eq!(host["DeviceRequests"][0]["Count"], 2);
    assert!(plan["node"]["body"]["Cmd"]
        .as_array()
        .unwrap()
        .contains(&Value::from("--default-runtime=nvidia")));
    assert!(inspect(&cluster.container()).is_none());
}

/// The install `kfbox cluster up` applies, as its dry run prints it: a YAML stream that
/// Kubernetes 1.35's schemas accept in strict mode (no unknown field, every type right), and
/// the same objects as the JSON plan.
#[test]
fn the_dry_run_prints_an_install_kubernetes_1_35_accepts() {
    let home = new_home();
    let yaml = ok(&kfbox_in(home.path(), &["cluster", "up", "--dry-run"])
        .output()
        .unwrap());
    assert!(
        yaml.starts_with("# The k3s node, a Docker container:"),
        "{yaml}"
    );
    let documents = yaml.matches("\n---\n").count();
    let plan: Value = serde_json::from_str(&ok(&kfbox_in(
        home.path(),
        &["cluster", "up", "--dry-run", "--json"],
    )
    .output()
    .unwrap()))
    .unwrap();
    let objects = plan["objects"].as_array().unwrap();
    assert_eq!(objects.len(), documents);
    let deployments = objects.iter().filter(|o| o["kind"] == "Deployment").count();
    assert_eq!(deployments, 9);
    assert!(
        yaml.contains("value: ghcr.io/kubeflow/kfp-driver:2.17.0"),
        "the driver image is pinned in the API server's environment"
    );

    let validate = |text: &str| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("install.yaml");
        fs_err::write(&file, text).unwrap();
        Command::new(kubernetes_validate())
            .args(["--strict", "--kubernetes-version", "1.35.0"])
            .arg(&file)
            .output()
            .unwrap()
    };
    let checked = validate(&yaml);
    let report = String::from_utf8_lossy(&checked.stdout).into_owned()
        + &String::from_utf8_lossy(&checked.stderr);
    assert!(checked.status.success(), "{report}");
    assert_eq!(
        report.matches(" passed for resource ").count(),
        documents,
        "{report}"
    );
    // With GPUs and a bundle that carries kfbox's runtime image: NVIDIA's device plugin and
    // the package index (its Deployment and Service) as well, as valid.
    let bundle = crate::common::bundle_with_runtime_image();
    let gpu_yaml = ok(&kfbox_in(
        home.path(),
        &[
            "cluster",
            "up",
            "--dry-run",
            "--gpus",
            "1",
            "--bundle",
            bundle.path().to_str().unwrap(),
        ],
    )
    .output()
    .unwrap());
    assert_eq!(gpu_yaml.matches("\n---\n").count(), documents + 3);
    assert!(gpu_yaml.contains("PIP_FIND_LINKS"), "{gpu_yaml}");
    let checked = validate(&gpu_yaml);
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stdout)
    );
    // The check can fail: one misspelt field of a Deployment is refused.
    let broken = yaml.replacen("readinessProbe:", "readinesProbe:", 1);
    let refused = validate(&broken);
    assert!(
        !refused.status.success(),
        "{}",
        String::from_utf8_lossy(&refused.stdout)
    );
}

/// kubernetes-validate from PyPI (tests/run.sh installs it in a venv of its own).
fn kubernetes_validate() -> String {
    std::env::var("KFBOX_TEST_KUBERNETES_VALIDATE").unwrap_or_else(|_| {
        panic!(
            "set KFBOX_TEST_KUBERNETES_VALIDATE to the kubernetes-validate of `pip install kubernetes-validate==1.37.0`, or run the tests through tests/run.sh"
        )
    })
}

/// The socket of the containerd that dockerd uses (its own, or the system's).
fn containerd_socket() -> &'static str {
    [
        "/var/run/docker/containerd/containerd.sock",
        "/run/containerd/containerd.sock",
    ]
    .into_iter()
    .find(|s| Path::new(s).exists())
    .expect("a containerd socket")
}

fn sh(script: &str) -> Output {
    Command::new("sh").args(["-c", script]).output().unwrap()
}

#[test]
fn a_bundle_imports_into_containerd_as_k3s_reads_it_and_boots_the_node_offline() {
    let pid = std::process::id();
    // A tiny cluster image and the stand-in node under a tag of this test's own.
    let tiny = format!("kfbox-test/tiny:{pid}");
    let rootfs = tempfile::tempdir().unwrap();
    fs_err::write(rootfs.path().join("hello.txt"), "from the bundle\n").unwrap();
    let imported = sh(&format!(
        "tar -C {} -c . | docker import - {tiny}",
        rootfs.path().display()
    ));
    assert!(imported.status.success(), "{imported:?}");
    let node = format!("kfbox-test/k3s-stand-in:bundled-{pid}");
    assert!(docker(&["tag", &stand_in("ready"), &node])
        .status()
        .unwrap()
        .success());
    let list = rootfs.path().join("images.txt");
    fs_err::write(&list, format!("node {node}\ncluster {tiny}\n")).unwrap();

    let cluster = TestCluster::new("bundle");
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&cluster.kfbox(&[
        "bundle",
        dir.path().to_str().unwrap(),
        "--images",
        list.to_str().unwrap(),
    ]));
    assert!(out.contains("bundled 2 images"), "{out}");
    let manifest: Value =
        serde_json::from_str(&fs_err::read_to_string(dir.path().join("manifest.json")).unwrap())
            .unwrap();
    let images = manifest["images"].as_array().unwrap();
    assert_eq!(images.len(), 2, "{manifest:#}");
    for image in images {
        assert!(
            image["id"].as_str().unwrap().starts_with("sha256:"),
            "{image}"
        );
        assert!(image["size"].as_u64().unwrap() > 0);
        let archive = dir.path().join(image["archive"].as_str().unwrap());
        assert_eq!(
            fs_err::metadata(&archive).unwrap().len(),
            image["compressed_size"].as_u64().unwrap()
        );
    }
    let archive_of = |role: &str| {
        let entry = images.iter().find(|i| i["role"] == role).unwrap();
        dir.path().join(entry["archive"].as_str().unwrap())
    };

    // As k3s reads archives: zstd within a 2^25 window, into containerd's k8s.io namespace.
    let socket = containerd_socket();
    let ctr = format!("ctr --address {socket} -n k8s.io");
    let imported = sh(&format!(
        "zstd -d --long=25 -c {} | {ctr} images import -",
        archive_of("cluster").display()
    ));
    assert!(imported.status.success(), "{imported:?}");
    let listed = sh(&format!("{ctr} images ls -q"));
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    let name = format!("docker.io/{tiny}");
    assert!(listed.lines().any(|l| l == name), "{listed}");
    let _ = sh(&format!("{ctr} images rm {name}"));
    // A window k3s refuses: the node archive again, compressed for a 2^27 window.
    let wide = dir.path().join("wide.tar.zst");
    let packed = sh(&format!(
        "zstd -d --long=25 -c {} | zstd -q --long=27 -1 -o {}",
        archive_of("node").display(),
        wide.display()
    ));
    assert!(packed.status.success(), "{packed:?}");
    let refused = sh(&format!(
        "zstd -d --long=25 -c {} > /dev/null",
        wide.display()
    ));
    assert!(
        !refused.status.success(),
        "a 2^27 window decoded within 2^25"
    );
    fs_err::remove_file(&wide).unwrap();

    // Offline, the node image comes from the bundle.
    assert!(docker(&["rmi", &node]).status().unwrap().success());
    let up = ok(&cluster.kfbox(&[
        "up",
        "--image",
        &node,
        "--bundle",
        dir.path().to_str().unwrap(),
        "--timeout",
        "60",
    ]));
    assert!(up.contains("Kubernetes API"), "{up}");
    let logs = docker(&["logs", &cluster.container()]).output().unwrap();
    let logs = String::from_utf8_lossy(&logs.stdout);
    assert!(
        logs.contains(&format!(
            "would import images from kfbox-test_tiny_{pid}.tar.zst"
        )),
        "{logs}"
    );
    drop(cluster);
    let _ = docker(&["rmi", &node, &tiny]).output();
}
