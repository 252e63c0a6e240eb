//! The web UI in real headless Chromium: tests/ui/ui_tests.py drives Debian's `chromium` with
//! Playwright against a `kfbox up` started here, with runs started by the real `kfp` client.
//! Screenshots land in `<target>/ui-screenshots/<test>/`.

use std::path::PathBuf;

use crate::common::served::{get, token_in, Served};

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
fn loops_conditions_and_nested_pipelines_are_collapsible_groups() {
    ui_test("control_flow");
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
