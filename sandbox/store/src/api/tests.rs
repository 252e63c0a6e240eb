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
    let handle = crate::record::begin_test_run(&store, dir.path(), "r1", Map::new());
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

/// A run with parameters and, from one step, a Metrics artifact.
fn run_with_values(
    store: &Store,
    root: &std::path::Path,
    id: &str,
    lr: f64,
    model: &str,
    accuracy: Option<f64>,
) {
    use crate::record::{
        ExecutionType, FinishedExecution, NewArtifact, NewExecution, OutputArtifact,
    };
    let parameters = serde_json::json!({"lr": lr, "model": model});
    let handle =
        crate::record::begin_test_run(store, root, id, parameters.as_object().unwrap().clone());
    let (execution, _) = store
        .start_execution(&handle, &NewExecution::running(ExecutionType::Container))
        .unwrap();
    let outputs = accuracy
        .map(|accuracy| {
            let metadata = serde_json::json!({"accuracy": accuracy, "display_name": "metrics"});
            vec![(
                "metrics".to_owned(),
                OutputArtifact::New(NewArtifact {
                    schema_title: "system.Metrics".into(),
                    uri: format!("/m/{id}"),
                    metadata: metadata.as_object().unwrap().clone(),
                }),
            )]
        })
        .unwrap_or_default();
    store
        .finish_execution(
            &handle,
            execution,
            &FinishedExecution {
                state: FinishedExecution::COMPLETE,
                props: Vec::new(),
                outputs,
            },
        )
        .unwrap();
}

fn run_names(store: &Store, query: &ListQuery) -> (Vec<String>, Option<String>) {
    let page = store.list_api_runs(query).unwrap();
    (
        page.items.into_iter().map(|r| r.run.run_id).collect(),
        page.next_page_token,
    )
}

#[test]
fn runs_sort_and_filter_by_parameters_and_metrics_across_pages() {
    let (dir, store) = store();
    run_with_values(&store, dir.path(), "a", 0.1, "rf", Some(0.7));
    run_with_values(&store, dir.path(), "b", 0.01, "svm", Some(0.9));
    run_with_values(&store, dir.path(), "c", 0.05, "rf", Some(0.8));
    run_with_values(&store, dir.path(), "d", 0.2, "rf", None);
    let mut query = ListQuery {
        sort_by: Some("metrics.accuracy".into()),
        descending: true,
        page_size: 2,
        ..ListQuery::default()
    };
    let mut seen = Vec::new();
    loop {
        let (page, token) = run_names(&store, &query);
        seen.extend(page);
        match token {
            Some(token) => query.page_token = Some(token),
            None => break,
        }
    }
    // A run without the metric sorts below every value.
    assert_eq!(seen, ["b", "c", "a", "d"]);

    let filtered = |field: &str, op: Op, operand: Operand| {
        run_names(
            &store,
            &ListQuery {
                conditions: vec![Condition {
                    field: field.into(),
                    op,
                    operand,
                }],
                sort_by: Some("parameters.lr".into()),
                page_size: 10,
                ..ListQuery::default()
            },
        )
        .0
    };
    assert_eq!(
        filtered("parameters.lr", Op::GreaterThan, Operand::Double(0.02)),
        ["c", "a", "d"]
    );
    assert_eq!(
        filtered("parameters.model", Op::Equals, Operand::Text("rf".into())),
        ["c", "a", "d"]
    );
    assert_eq!(
        filtered(
            "metrics.accuracy",
            Op::GreaterThanEquals,
            Operand::Double(0.8)
        ),
        ["b", "c"]
    );
    match store.list_api_runs(&ListQuery {
        sort_by: Some("metrics.f1".into()),
        page_size: 10,
        ..ListQuery::default()
    }) {
        Err(StoreError::BadFilter(message)) => {
            assert!(message.contains("`metrics.f1`"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.run_value_names().unwrap(),
        ["metrics.accuracy", "parameters.lr", "parameters.model"]
    );
    let values = store.run_values(&["b".to_owned(), "d".to_owned()]).unwrap();
    assert_eq!(
        serde_json::Value::Object(values["b"].clone()),
        serde_json::json!({"parameters.lr": 0.01, "parameters.model": "svm", "metrics.accuracy": 0.9})
    );
    assert!(!values["d"].contains_key("metrics.accuracy"));
}

#[test]
fn a_store_from_before_run_values_gets_them_when_it_opens() {
    let (dir, store) = store();
    run_with_values(&store, dir.path(), "a", 0.1, "rf", Some(0.7));
    {
        let conn = store.conn();
        conn.execute_batch(
            "DROP TABLE kfbox_run_value; DROP TABLE kfbox_value_name; PRAGMA user_version = 3;",
        )
        .unwrap();
    }
    drop(store);
    let store = Store::open(&dir.path().join("kfbox.sqlite")).unwrap();
    let values = store.run_values(&["a".to_owned()]).unwrap();
    assert_eq!(
        serde_json::Value::Object(values["a"].clone()),
        serde_json::json!({"parameters.lr": 0.1, "parameters.model": "rf", "metrics.accuracy": 0.7})
    );
}
