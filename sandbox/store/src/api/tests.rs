//! The API's resources: paging, filters, and how runs join experiments.

use serde_json::Map;

use crate::db::Store;
use crate::error::StoreError;
use crate::listing::{Condition, ListQuery, Op, Operand};
use crate::record::NewRun;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("kfbox.sqlite")).unwrap();
    (dir, store)
}

fn names(store: &Store, query: &ListQuery) -> (Vec<String>, Option<String>) {
    let page = store.list_experiments(query).unwrap();
    (
        page.items.into_iter().map(|e| e.display_name).collect(),
        page.next_page_token,
    )
}

#[test]
fn lists_page_by_key_in_either_direction_and_tokens_keep_their_sort() {
    let (_dir, store) = store();
    for name in ["c", "a", "e", "b", "d"] {
        store.create_experiment(name, "").unwrap();
    }
    let mut query = ListQuery {
        sort_by: Some("display_name".into()),
        descending: true,
        page_size: 2,
        ..ListQuery::default()
    };
    let mut seen = Vec::new();
    loop {
        let (page, token) = names(&store, &query);
        seen.extend(page);
        match token {
            Some(token) => query.page_token = Some(token),
            None => break,
        }
    }
    // `Default` exists from the start.
    assert_eq!(seen, ["e", "d", "c", "b", "a", "Default"]);
    let first = store
        .list_experiments(&ListQuery {
            page_size: 2,
            ..ListQuery::default()
        })
        .unwrap();
    assert_eq!(first.total_size, 6);
    let other_sort = ListQuery {
        sort_by: Some("display_name".into()),
        page_size: 2,
        page_token: first.next_page_token,
        ..ListQuery::default()
    };
    assert!(matches!(
        store.list_experiments(&other_sort),
        Err(StoreError::BadPageToken(_))
    ));
}

#[test]
fn conditions_filter_and_unknown_fields_are_named() {
    let (_dir, store) = store();
    for name in ["train-a", "train-b", "eval"] {
        store.create_experiment(name, "").unwrap();
    }
    let query = |conditions: Vec<Condition>| ListQuery {
        conditions,
        sort_by: Some("name".into()),
        page_size: 10,
        ..ListQuery::default()
    };
    let substring = Condition {
        field: "display_name".into(),
        op: Op::IsSubstring,
        operand: Operand::Text("train".into()),
    };
    assert_eq!(
        names(&store, &query(vec![substring])).0,
        ["train-a", "train-b"]
    );
    let among = Condition {
        field: "name".into(),
        op: Op::In,
        operand: Operand::Texts(vec!["eval".into(), "train-b".into()]),
    };
    assert_eq!(names(&store, &query(vec![among])).0, ["eval", "train-b"]);
    let future = Condition {
        field: "created_at".into(),
        op: Op::GreaterThan,
        // Seconds, as the backend counts them: no experiment is that new.
        operand: Operand::Int(4_000_000_000),
    };
    assert!(names(&store, &query(vec![future])).0.is_empty());
    let unknown = Condition {
        field: "colour".into(),
        op: Op::Equals,
        operand: Operand::Text("red".into()),
    };
    match store.list_experiments(&query(vec![unknown])) {
        Err(e @ StoreError::UnknownField { .. }) => {
            assert!(e.to_string().contains("`colour`"), "{e}");
            assert!(e.to_string().contains("display_name"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let mistyped = Condition {
        field: "created_at".into(),
        op: Op::Equals,
        operand: Operand::Text("yesterday".into()),
    };
    assert!(matches!(
        store.list_experiments(&query(vec![mistyped])),
        Err(StoreError::BadFilter(_))
    ));
    assert!(matches!(
        store.create_experiment("eval", ""),
        Err(StoreError::Exists { .. })
    ));
}

#[test]
fn runs_outside_the_api_list_under_default_and_deleting_a_run_drops_its_api_row() {
    let (dir, store) = store();
    let default = store.default_experiment().unwrap();
    assert_eq!(store.default_experiment().unwrap(), default);
    let run_dir = dir.path().join("runs/r1");
    let handle = crate::record::begin_test_run(&store, dir.path(), "r1");
    let run = store.api_run("r1").unwrap();
    assert_eq!(
        run.fields.experiment_id.as_deref(),
        Some(default.experiment_id.as_str())
    );
    assert_eq!(run.storage_state, "AVAILABLE");
    store.set_run_storage("r1", true).unwrap();
    assert_eq!(store.api_run("r1").unwrap().storage_state, "ARCHIVED");
    store
        .finish_run(
            &handle,
            &crate::RunOutcome {
                state: "SUCCEEDED".into(),
                error: None,
                outputs: Map::new(),
                output_artifacts: Map::new(),
            },
        )
        .unwrap();
    let row = store.api_run("r1").unwrap().run;
    store.discard_run(&row, &dir.path().join("runs")).unwrap();
    assert!(matches!(
        store.api_run("r1"),
        Err(StoreError::RunNotFound(_))
    ));
    assert!(!run_dir.exists());
}

#[test]
fn a_run_sets_the_last_run_of_its_own_experiment_only() {
    let (dir, store) = store();
    let default = store.default_experiment().unwrap();
    let other = store.create_experiment("eval", "").unwrap();
    let begin = |id: &str, experiment_id: Option<String>| {
        store
            .begin_run(&NewRun {
                run_id: id.into(),
                display_name: id.into(),
                pipeline_name: "p".into(),
                resource_name: format!("p-{id}"),
                run_dir: dir.path().join(id).display().to_string(),
                parameters: Map::new(),
                pipeline_spec: String::new(),
                experiment_id,
            })
            .unwrap();
    };
    begin("in-eval", Some(other.experiment_id.clone()));
    assert!(store
        .experiment(&other.experiment_id)
        .unwrap()
        .last_run_created_at
        .is_some());
    assert_eq!(
        store
            .experiment(&default.experiment_id)
            .unwrap()
            .last_run_created_at,
        None,
        "a run in another experiment is not Default's last run"
    );
    begin("from-the-cli", None);
    assert!(store
        .experiment(&default.experiment_id)
        .unwrap()
        .last_run_created_at
        .is_some());
    assert_eq!(
        store.api_run("in-eval").unwrap().fields.experiment_id,
        Some(other.experiment_id)
    );
}
