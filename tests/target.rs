//! `kfbox run --target`: the same file sent to a KFP endpoint through the v2beta1 API. The
//! endpoint here is `kfbox up`, which speaks the same API as a cluster's KFP.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::common::served::{free_port, kfbox_in, new_home, Served};
use crate::common::{compile, kfbox, parse_run, run_json, wait_for};

/// Each task's state by path, as a summary lists them.
fn states(summary: &Value) -> BTreeMap<String, String> {
    summary["tasks"]
        .as_array()
        .unwrap_or_else(|| panic!("no tasks in {summary:#}"))
        .iter()
        .map(|t| {
            (
                t["path"].as_str().unwrap().to_owned(),
                t["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn run_on(target: &str, pipeline: &std::path::Path, params: &[&str]) -> crate::common::RunResult {
    let mut args = vec![
        "run",
        pipeline.to_str().unwrap(),
        "--json",
        "--target",
        target,
    ];
    for p in params {
        args.extend(["--param", p]);
    }
    parse_run(kfbox(&args).output().expect("kfbox starts"))
}

#[test]
fn a_run_sent_to_an_endpoint_ends_as_the_same_run_does_here() {
    let served = Served::start("127.0.0.1", &[]);
    let cases: [(&str, &[&str], i32); 5] = [
        ("conditions", &["value=12"], 0),
        ("conditions", &["value=3"], 0),
        ("fan_in", &[], 0),
        ("nested", &[], 0),
        ("exit_handler", &[], 1),
    ];
    for (module, params, code) in cases {
        let pipeline = compile(module);
        let here = run_json(&pipeline, params, &[]);
        let there = run_on(&served.url, &pipeline, params);
        let what = format!("{module} {params:?}");
        assert_eq!(here.code, code, "{what} here: {}", here.stderr);
        assert_eq!(there.code, code, "{what} there: {}", there.stderr);
        assert_eq!(there.state(), here.state(), "{what}");
        assert_eq!(states(&there.summary), states(&here.summary), "{what}");
        // Steps ran once each in both; DAGs count no attempts in either.
        for task in there.summary["tasks"].as_array().unwrap() {
            let path = task["path"].as_str().unwrap();
            assert_eq!(
                task["attempts"],
                here.task(path)["attempts"],
                "{what}: {path}"
            );
        }
        let run_id = there.summary["run_id"].as_str().unwrap();
        assert_eq!(
            there.summary["page"],
            format!("{}/#/runs/details/{run_id}", served.url),
            "{what}"
        );
        assert_eq!(there.summary["run_dir"], "", "{what}");
        // The endpoint recorded it as its own run.
        let recorded = served.recorded_run(run_id);
        assert_eq!(recorded["state"], there.summary["state"], "{what}");
        assert_eq!(states(&recorded), states(&there.summary), "{what}");
    }
    // A failed step's error travels back.
    let pipeline = compile("exit_handler");
    let there = run_on(&served.url, &pipeline, &[]);
    let failed = there.task("exit-handler-1/fail");
    assert!(
        failed["error"]
            .as_str()
            .unwrap_or_default()
            .contains("code 3"),
        "{failed:#}"
    );
}

#[test]
fn parameters_are_checked_here_before_anything_is_sent() {
    let served = Served::start("127.0.0.1", &[]);
    let pipeline = compile("conditions");
    let there = run_on(&served.url, &pipeline, &["value=twelve"]);
    assert_eq!(there.code, 2, "{}", there.stderr);
    assert!(there.stderr.contains("value"), "{}", there.stderr);
    let listed = kfbox_in(served.home(), &["runs", "list", "--json"])
        .output()
        .unwrap();
    let runs: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(runs["runs"].as_array().map(Vec::len), Some(0), "{runs:#}");
}

#[test]
fn ctrl_c_terminates_the_run_on_the_target() {
    let served = Served::start("127.0.0.1", &[]);
    let pipeline = compile("sleeper");
    let child = kfbox(&[
        "run",
        pipeline.to_str().unwrap(),
        "--json",
        "--target",
        &served.url,
        "--param",
        "seconds=300",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let list = || -> Vec<Value> {
        let out = kfbox_in(served.home(), &["runs", "list", "--json"])
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout)
            .ok()
            .and_then(|v| v["runs"].as_array().cloned())
            .unwrap_or_default()
    };
    wait_for("the step to run there", Duration::from_secs(120), || {
        list().first().is_some_and(|run| {
            served.recorded_run(run["run_id"].as_str().unwrap())["tasks"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["state"] == "RUNNING"))
        })
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let result = parse_run(child.wait_with_output().unwrap());
    assert_eq!(result.code, 1, "{}", result.stderr);
    assert_eq!(result.state(), "CANCELED", "{:#}", result.summary);
    let run_id = result.summary["run_id"].as_str().unwrap();
    assert_eq!(served.recorded_run(run_id)["state"], "CANCELED");
}

#[test]
fn a_target_that_wants_a_token_gets_it_and_says_so_when_missing() {
    let served = Served::start("127.0.0.1", &["--token", "s3cret-token"]);
    let pipeline = compile("nested");
    let without = run_on(&served.url, &pipeline, &[]);
    assert_eq!(without.code, 2, "{}", without.stderr);
    assert!(
        without.stderr.contains("401") && without.stderr.contains("KFBOX_TARGET_TOKEN"),
        "{}",
        without.stderr
    );
    let with = parse_run(
        kfbox(&[
            "run",
            pipeline.to_str().unwrap(),
            "--json",
            "--target",
            &served.url,
        ])
        .env("KFBOX_TARGET_TOKEN", "s3cret-token")
        .output()
        .unwrap(),
    );
    assert_eq!(with.code, 0, "{}", with.stderr);
    assert_eq!(with.state(), "SUCCEEDED");
}

#[test]
fn bad_targets_are_refused_with_what_to_do() {
    let pipeline = compile("nested");
    let port = free_port();
    let closed = format!("http://127.0.0.1:{port}");
    let home = new_home();
    for (target, expected) in [
        (
            closed.as_str(),
            format!("cannot reach the KFP API at {closed}/apis/v2beta1/healthz"),
        ),
        ("cluster.example", "is not a KFP endpoint".to_owned()),
        ("ftp://127.0.0.1/", "is not a KFP endpoint".to_owned()),
    ] {
        let out = kfbox_in(
            home.path(),
            &["run", pipeline.to_str().unwrap(), "--target", target],
        )
        .output()
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{target}: {stderr}");
        assert!(stderr.contains(&expected), "{target}: {stderr}");
    }
    // Local-only options cannot go with a target.
    let out = kfbox_in(
        home.path(),
        &[
            "run",
            pipeline.to_str().unwrap(),
            "--target",
            &closed,
            "--artifact",
            "x=/tmp",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot be used with"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Certificates as k3s makes them (EC P-256 keys in SEC1 form), from Debian's openssl: a CA,
/// a server certificate for 127.0.0.1, a client certificate it signed, and a client
/// certificate from another CA.
fn make_certificates(dir: &std::path::Path) {
    let script = r#"set -e
key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1.key"; }
sign() { # NAME CA EXTENSIONS
  openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr"
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days 2 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}
for ca in ca other-ca; do
  key $ca
  openssl req -x509 -new -key $ca.key -subj "/CN=$ca" -days 2 -out $ca.crt
done
key server; sign server ca "subjectAltName=IP:127.0.0.1
extendedKeyUsage=serverAuth"
key client; sign client ca "extendedKeyUsage=clientAuth"
key stranger; sign stranger other-ca "extendedKeyUsage=clientAuth"
"#;
    let out = std::process::Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A kubeconfig as `kfbox cluster up` writes it, with the client certificate `client`.
fn write_kubeconfig(
    path: &std::path::Path,
    name: &str,
    port: u16,
    pki: &std::path::Path,
    client: &str,
) {
    use base64::Engine;
    let data = |file: &str| {
        base64::engine::general_purpose::STANDARD.encode(fs_err::read(pki.join(file)).unwrap())
    };
    fs_err::create_dir_all(path.parent().unwrap()).unwrap();
    fs_err::write(
        path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority-data: {}\nusers:\n- name: {name}\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: {name}\n  context: {{cluster: {name}, user: {name}}}\ncurrent-context: {name}\n",
            data("ca.crt"),
            data(&format!("{client}.crt")),
            data(&format!("{client}.key")),
        ),
    )
    .unwrap();
}

/// `--target cluster:NAME` reaches the cluster's KFP API as a real one is reached: through the
/// Kubernetes API server's service proxy, over TLS trusting only the cluster's CA, with the
/// kubeconfig's client certificate. The API server here is a stand-in
/// (tests/cluster/kube_service_proxy.py) in front of `kfbox up`; a real k3s is in
/// tests/cluster-e2e.sh.
#[test]
fn a_run_sent_to_the_cluster_goes_through_its_kubernetes_api_with_the_kubeconfigs_certificate() {
    let served = Served::start("127.0.0.1", &[]);
    let pki = tempfile::tempdir().unwrap();
    make_certificates(pki.path());
    let port_file = pki.path().join("port");
    let mut proxy = std::process::Command::new(crate::common::sdk_python())
        .arg(crate::common::repo_root().join("tests/cluster/kube_service_proxy.py"))
        .arg(&port_file)
        .arg(pki.path().join("server.crt"))
        .arg(pki.path().join("server.key"))
        .arg(pki.path().join("ca.crt"))
        .arg("/api/v1/namespaces/kubeflow/services/ml-pipeline:8888/proxy/")
        .arg(&served.url)
        .spawn()
        .unwrap();
    wait_for("the proxy to listen", Duration::from_secs(20), || {
        port_file.exists()
    });
    let port: u16 = fs_err::read_to_string(&port_file).unwrap().parse().unwrap();
    let name = format!("t{}-proxy", std::process::id());
    let cluster_dir = crate::common::shared_home().join("clusters").join(&name);
    let kubeconfig = cluster_dir.join("kubeconfig.yaml");
    write_kubeconfig(&kubeconfig, &name, port, pki.path(), "client");
    let target = format!("cluster:{name}");

    let pipeline = compile("conditions");
    let there = run_on(&target, &pipeline, &["value=12"]);
    let here = run_json(&pipeline, &["value=12"], &[]);
    assert_eq!(there.code, 0, "{}", there.stderr);
    assert_eq!(states(&there.summary), states(&here.summary));
    let run_id = there.summary["run_id"].as_str().unwrap();
    assert_eq!(served.recorded_run(run_id)["state"], "SUCCEEDED");
    // The cluster's UI is not published: no page, and the way to open it instead.
    assert_eq!(there.summary["page"], Value::Null);
    assert!(
        there.stderr.contains(&format!("sent to cluster `{name}`"))
            && there
                .stderr
                .contains("port-forward svc/ml-pipeline-ui 8080:80"),
        "{}",
        there.stderr
    );

    // A certificate the cluster's CA did not sign gets nowhere; kfbox says what to check.
    write_kubeconfig(&kubeconfig, &name, port, pki.path(), "stranger");
    let refused = run_on(&target, &pipeline, &["value=12"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused
            .stderr
            .contains(&format!("kfbox cluster status --name {name}")),
        "{}",
        refused.stderr
    );
    // Tokens are for addresses; a cluster that is not there is named.
    let token = kfbox(&[
        "run",
        pipeline.to_str().unwrap(),
        "--target",
        &target,
        "--target-token",
        "x",
    ])
    .output()
    .unwrap();
    assert_eq!(token.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&token.stderr).contains("--target-token does not apply"));
    let missing = kfbox(&[
        "run",
        pipeline.to_str().unwrap(),
        "--target",
        "cluster:nothere",
    ])
    .output()
    .unwrap();
    assert_ne!(missing.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no kfbox cluster `nothere` here"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    let _ = proxy.kill();
    let _ = proxy.wait();
    let _ = fs_err::remove_dir_all(cluster_dir);
}
