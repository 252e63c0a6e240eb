//! Names from a spec or a request never become paths outside the home; deletes and reads
//! stay inside; links planted by steps are not followed; escapes are shown escaped.

use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use crate::common::served::{get, new_home, Served};
use crate::common::wait_for;

use super::*;

/// Specs whose output parameter, task or output artifact names are paths out of the home.
fn path_name_specs(victim: &Victim) -> Vec<(&'static str, Value)> {
    let absolute = victim.path().join("notes.txt").display().to_string();
    let walked_artifact = victim.walked("art");
    vec![
        (
            "an output parameter named by an absolute path",
            shell_pipeline(
                "path-names",
                "step",
                json!({"parameters": {&absolute: {"parameterType": "STRING"}}}),
                &[
                    "sh",
                    "-c",
                    "echo owned > \"$0\"",
                    &format!("{{{{$.outputs.parameters['{absolute}'].output_file}}}}"),
                ],
            ),
        ),
        (
            "a task named by a walk out of the home",
            shell_pipeline(
                "path-names",
                &victim.walked("task"),
                json!({}),
                &["sh", "-c", "true"],
            ),
        ),
        (
            "an output artifact named by a walk out of the home",
            shell_pipeline(
                "path-names",
                "step",
                json!({"artifacts": {&walked_artifact: artifact_type()}}),
                &[
                    "sh",
                    "-c",
                    "mkdir -p \"$0\" && echo owned > \"$0/f\"",
                    &format!("{{{{$.outputs.artifacts['{walked_artifact}'].path}}}}"),
                ],
            ),
        ),
    ]
}

#[test]
fn spec_names_that_are_paths_write_nothing_outside_the_home() {
    let home = new_home();
    let victim = Victim::new();
    for (what, spec) in path_name_specs(&victim) {
        let file = write_spec(home.path(), "names.json", &spec);
        let out = run_in(home.path(), &["run", file.to_str().unwrap()]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(
            stderr.contains("cannot name a file"),
            "{what}: the error says why: {stderr}"
        );
        victim.assert_untouched(what);
    }
    assert!(recorded_runs(home.path()).is_empty());
}

#[test]
fn api_refuses_spec_names_that_are_paths() {
    let served = Served::start("127.0.0.1", &[]);
    let victim = Victim::new();
    for (what, spec) in path_name_specs(&victim) {
        let (code, body) = create_run(&served, "names", &spec);
        assert_eq!(code, 400, "{what}: {body}");
        assert!(body.contains("cannot name a file"), "{what}: {body}");
        victim.assert_untouched(what);
    }
    assert!(recorded_runs(served.home()).is_empty());
}

#[test]
fn deleting_a_run_never_deletes_outside_the_home() {
    let home = new_home();
    let victim = Victim::new();
    // The step points its output artifact's URI, through the executor output, at a walk out
    // of the run directory.
    let script = format!(
        "mkdir -p \"$0\" && printf '{{\"artifacts\":{{\"out\":{{\"artifacts\":[{{\"uri\":\"%s\"}}]}}}}}}' \"$0/{}\" > \"$1\"",
        victim.walked("")
    );
    let spec = shell_pipeline(
        "walked-uri",
        "step",
        json!({"artifacts": {"out": artifact_type()}}),
        &[
            "sh",
            "-c",
            &script,
            "{{$.outputs.artifacts['out'].path}}",
            "{{$.outputs.output_file}}",
        ],
    );
    let file = write_spec(home.path(), "walked.json", &spec);
    let out = run_in(home.path(), &["run", file.to_str().unwrap(), "--json"]);
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stderr)));
    let run_id = summary["run_id"].as_str().unwrap();
    let deleted = run_in(home.path(), &["runs", "delete", run_id]);
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    victim.assert_untouched("deleting the run");
    assert!(recorded_runs(home.path()).is_empty());
}

/// Start a run through the API and wait until it ended; its id and state.
fn api_run(served: &Served, spec: &Value) -> (String, String) {
    let (code, body) = create_run(served, "api", spec);
    assert_eq!(code, 200, "{body}");
    let run: Value = serde_json::from_str(&body).unwrap();
    let run_id = run["run_id"].as_str().unwrap().to_owned();
    let mut state = String::new();
    wait_for("the run to end", Duration::from_secs(60), || {
        let (_, body) = get(&served.url, &format!("/apis/v2beta1/runs/{run_id}"), None).unwrap();
        let run: Value = serde_json::from_str(&body).unwrap_or_default();
        state = run["state"].as_str().unwrap_or_default().to_owned();
        !matches!(state.as_str(), "RUNNING" | "PENDING" | "")
    });
    (run_id, state)
}

#[test]
fn directory_artifacts_are_served_without_following_symlinks() {
    let served = Served::start("127.0.0.1", &[]);
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("id_ed25519");
    let marker = format!("PRIVATE-KEY-{}", std::process::id());
    fs_err::write(&secret, &marker).unwrap();
    let script = format!(
        "mkdir -p \"$0\" && echo visible > \"$0/real\" && ln -s {secret} \"$0/inner\" && ln -s {secret} \"$1\"",
        secret = secret.display()
    );
    let spec = shell_pipeline(
        "planted-links",
        "step",
        json!({"artifacts": {"out": artifact_type(), "single": artifact_type()}}),
        &[
            "sh",
            "-c",
            &script,
            "{{$.outputs.artifacts['out'].path}}",
            "{{$.outputs.artifacts['single'].path}}",
        ],
    );
    let (run_id, state) = api_run(&served, &spec);
    assert_eq!(state, "SUCCEEDED");
    let (code, body) = get(
        &served.url,
        &format!("/apis/v2beta1/runs/{run_id}/nodes/step/artifacts/out:read"),
        None,
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let read: Value = serde_json::from_str(&body).unwrap();
    let tar = base64::engine::general_purpose::STANDARD
        .decode(read["data"].as_str().unwrap())
        .unwrap();
    let tar = text(&tar);
    assert!(
        tar.contains("visible"),
        "the directory's own file is archived"
    );
    assert!(
        !tar.contains(&marker),
        "a planted link's target was archived"
    );
    let (code, body) = get(
        &served.url,
        &format!("/apis/v2beta1/runs/{run_id}/nodes/step/artifacts/single:read"),
        None,
    )
    .unwrap();
    assert!(!body.contains(&marker), "{code}: a planted link was read");
    assert!(code == 400 || code == 404, "{code}: {body}");
    // The UI's content route reads through the same function.
    let (_, body) = get(
        &served.url,
        &format!("/apis/v1alpha1/runs/{run_id}/artifacts"),
        None,
    )
    .unwrap();
    let listed: Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<String> = listed["artifacts"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .map(|a| a["artifact_id"].to_string().trim_matches('"').to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "{listed}");
    for id in ids {
        let (_, body) = get(
            &served.url,
            &format!("/apis/v1alpha1/artifacts/{id}/content"),
            None,
        )
        .unwrap();
        assert!(
            !body.contains(&marker),
            "artifact {id}: a planted link was read"
        );
    }
}

#[test]
fn terminal_escapes_in_names_are_shown_escaped() {
    let home = new_home();
    let hostile = "x\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}31m";
    let mut spec = shell_pipeline(
        &format!("esc{hostile}"),
        "step",
        json!({}),
        &["sh", "-c", "exit 3"],
    );
    spec["root"]["dag"]["tasks"]["step"]["taskInfo"]["name"] = json!(format!("shown{hostile}"));
    let file = write_spec(home.path(), "escapes.json", &spec);
    let run_name = format!("run{hostile}");
    let out = run_in(
        home.path(),
        &["run", file.to_str().unwrap(), "--run-name", &run_name],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let clean = |what: &str, bytes: &[u8]| {
        let shown = text(bytes);
        assert!(
            !shown.contains(['\u{1b}', '\u{7}', '\u{9b}']),
            "{what} printed a control character: {shown:?}"
        );
    };
    clean("kfbox run (stdout)", &out.stdout);
    clean("kfbox run (stderr)", &out.stderr);
    let runs = recorded_runs(home.path());
    assert_eq!(runs.len(), 1);
    for args in [
        vec!["runs", "list"],
        vec!["runs", "get", &runs[0]],
        vec!["artifacts", "list", "--run", &runs[0]],
    ] {
        let out = run_in(home.path(), &args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        clean(&format!("{args:?}"), &out.stdout);
        clean(&format!("{args:?}"), &out.stderr);
    }
}
