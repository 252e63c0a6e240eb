//! The web UI in real headless Chromium: tests/ui/ui_tests.py drives Debian's `chromium` with
//! Playwright against a `kfbox up` started here, with runs started by the real `kfp` client.
//! Screenshots land in `<target>/ui-screenshots/<test>/`.

use std::path::PathBuf;

use crate::common::served::{get, kfbox_in, new_home, token_in, Served};

fn chromium() -> String {
    std::env::var("KFBOX_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

fn screenshots(test: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(".."));
    target.join("ui-screenshots").join(test)
}

fn ui_test(name: &str) {
    ui_test_on(&Served::start("127.0.0.1", &[]), name, &[]);
}

fn ui_test_on(served: &Served, name: &str, env: &[(&str, String)]) {
    let mut env = env.to_vec();
    env.push(("CHROMIUM", chromium()));
    env.push((
        "KFBOX_UI_SCREENSHOTS",
        screenshots(name).display().to_string(),
    ));
    served.python_test("tests/ui/ui_tests.py", name, &env);
}

#[test]
fn runs_list_and_run_details_show_the_graph_logs_metrics_and_lineage() {
    ui_test("runs_and_details");
}

#[test]
fn compare_shows_two_runs_parameters_and_metrics() {
    ui_test("compare");
}

#[test]
fn a_run_started_from_the_form_turns_green_live() {
    ui_test("run_form");
}

#[test]
fn an_uploaded_pipeline_runs_from_the_form_and_terminates_from_its_page() {
    ui_test("upload_and_terminate");
}

#[test]
fn a_failed_run_says_why_and_reruns_from_its_page_with_a_changed_value() {
    ui_test("failure_and_rerun");
}

#[test]
fn loops_conditions_and_nested_pipelines_are_collapsible_groups() {
    ui_test("control_flow");
}

#[test]
fn a_loop_of_120_iterations_comes_collapsed_counted_and_paged() {
    ui_test("large_loop");
}

#[test]
fn empty_states_keyboard_narrow_windows_and_unknown_pages() {
    ui_test("empty_and_keyboard");
}

#[test]
fn beyond_loopback_the_page_asks_for_the_token_once() {
    let served = Served::start("0.0.0.0", &[]);
    let token = token_in(&served.stdout).expect("a generated token");
    ui_test_on(&served, "token", &[("KFP_TOKEN", token)]);
}

#[test]
fn the_page_loads_without_a_token_and_the_api_still_needs_one() {
    let served = Served::start("0.0.0.0", &[]);
    let (code, page) = get(&served.url, "/", None).unwrap();
    assert_eq!(code, 200);
    assert!(page.contains("/assets/app.js"), "{page}");
    let (code, script) = get(&served.url, "/assets/app.js", None).unwrap();
    assert_eq!(code, 200);
    assert!(script.len() > 10_000, "the built bundle, not a placeholder");
    let (code, _) = get(&served.url, "/apis/v2beta1/runs", None).unwrap();
    assert_eq!(code, 401);
}

#[test]
fn the_sidebar_shows_a_ready_lab_with_a_link_to_the_welcome_notebook() {
    let lab = crate::lab::start_with_lab(new_home(), &[], &[]);
    ui_test_on(
        &lab.served,
        "lab_ready",
        &[("LAB_URL", lab.lab_url.clone())],
    );
}

#[test]
fn the_sidebar_and_status_say_why_the_lab_did_not_start() {
    // Offline, in a home with no environments and no wheelhouse: the installer cannot be had.
    let home = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let served = Served::start_up(home, "127.0.0.1", &["--offline"]);
    let started = std::time::Instant::now();
    let status = loop {
        let out = kfbox_in(served.home(), &["status", "--json"])
            .output()
            .unwrap();
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if status["lab"]["state"] == "failed" {
            break status;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the lab never failed: {status:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let error = status["lab"]["error"].as_str().unwrap();
    assert!(error.contains("uv"), "{error}");
    assert!(error.contains("kfbox env bundle"), "the hint: {error}");
    assert!(
        status["lab"]["log"]
            .as_str()
            .unwrap()
            .ends_with("python/logs/uv.log"),
        "{status:#}"
    );
    let text = kfbox_in(served.home(), &["status"]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("JupyterLab: failed: "), "{text}");
    ui_test_on(&served, "lab_failed", &[]);
}
