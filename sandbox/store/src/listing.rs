//! Filtered, sorted, keyset-paged lists of the API's resources (runs, experiments, pipelines,
//! pipeline versions, recurring runs), as the Kubeflow Pipelines API lists them.
//!
//! Fields are named as the API names them and mapped to SQL here; nothing a client sends is
//! ever spliced into SQL except through a known field's expression or a bound parameter. A page
//! token holds the sort field, its direction and the last row's key, so a page costs one index
//! range scan however deep it is, and a token is refused with any other sort.

use base64::Engine;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, Row};
use serde::{Deserialize, Serialize};

use crate::db::Store;
use crate::error::StoreError;
use crate::run_values;

/// A comparison, as the API's `Filter.Predicate.Operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Equals,
    NotEquals,
    GreaterThan,
    GreaterThanEquals,
    LessThan,
    LessThanEquals,
    In,
    IsSubstring,
}

/// The value a field is compared with. Times are milliseconds since the epoch.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Int(i64),
    /// kfbox's own `double_value`, for metrics and parameters (`metrics.accuracy > 0.9`).
    Double(f64),
    Text(String),
    Time(i64),
    Ints(Vec<i64>),
    Texts(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The API's field name (`display_name`, `created_at`, `state`...).
    pub field: String,
    pub op: Op,
    pub operand: Operand,
}

/// What to list: conditions (all must hold), the sort, and where the page starts.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub conditions: Vec<Condition>,
    /// The API's field name; `None` sorts by creation time.
    pub sort_by: Option<String>,
    pub descending: bool,
    pub page_size: usize,
    pub page_token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// How many items match the conditions, over all pages.
    pub total_size: i64,
    pub next_page_token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    /// Milliseconds in the store; an integer operand means seconds, as the backend stores them.
    Time,
    /// A run's parameter or metric: numbers and text, compared as SQLite compares them
    /// (numbers by value, then text).
    Value,
}

#[derive(Clone, Copy)]
pub(crate) struct Field<'a> {
    pub api: &'a str,
    pub sql: &'a str,
    pub kind: Kind,
    /// NULL sorts as the lowest value; NOT NULL columns sort by themselves, so their index
    /// serves the order.
    pub nullable: bool,
}

impl<'a> Field<'a> {
    pub const fn text(api: &'a str, sql: &'a str) -> Self {
        Self {
            api,
            sql,
            kind: Kind::Text,
            nullable: false,
        }
    }

    pub const fn time(api: &'a str, sql: &'a str) -> Self {
        Self {
            api,
            sql,
            kind: Kind::Time,
            nullable: false,
        }
    }

    pub const fn nullable(self) -> Self {
        Self {
            nullable: true,
            ..self
        }
    }
}

pub(crate) struct Join {
    /// The prefix of the joined table's columns (`a.`).
    pub prefix: &'static str,
    /// The JOIN clause.
    pub clause: &'static str,
    /// The joined table alone, aliased, for counts that need nothing else.
    pub alone: &'static str,
    /// The key in the joined table: the tie-breaker when sorting by one of its fields, so that
    /// its indexes serve the order.
    pub id: &'static str,
}

/// One listable resource: its name for messages, its FROM clause, key, and fields.
pub(crate) struct Table {
    pub resource: &'static str,
    /// The columns `map` reads, in order.
    pub select: &'static [&'static str],
    pub from: &'static str,
    /// A table joined one to one: counting reads only the tables its conditions need.
    pub join: Option<Join>,
    pub id: &'static str,
    pub fields: &'static [Field<'static>],
    /// Whether rows are runs, which also have fields `parameters.NAME` and `metrics.NAME`.
    pub run_values: bool,
}

impl Table {
    /// The FROM clause with the joined table.
    pub fn source(&self) -> String {
        match &self.join {
            Some(join) => format!("{} {}", self.from, join.clause),
            None => self.from.to_owned(),
        }
    }

    fn field(&self, conn: &Connection, name: &str) -> Result<Resolved, StoreError> {
        if let Some(field) = self.fields.iter().find(|f| f.api == name) {
            return Ok(Resolved::Static(*field));
        }
        let is_value =
            name.starts_with(run_values::PARAMETERS) || name.starts_with(run_values::METRICS);
        if self.run_values && is_value {
            let id = run_values::name_id(conn, name)?.ok_or_else(|| {
                StoreError::BadFilter(format!(
                    "no run has `{name}` (a parameter's name after `parameters.`, a logged metric's after `metrics.`)"
                ))
            })?;
            // The id is the store's own integer, never the client's text.
            return Ok(Resolved::Value {
                api: name.to_owned(),
                sql: format!(
                    "(SELECT v.value FROM kfbox_run_value v WHERE v.name_id = {id} AND v.run_id = {})",
                    self.id
                ),
            });
        }
        let mut known: Vec<&str> = self.fields.iter().map(|f| f.api).collect();
        if self.run_values {
            known.extend(["parameters.NAME", "metrics.NAME"]);
        }
        Err(StoreError::UnknownField {
            resource: self.resource,
            field: name.to_owned(),
            known: known.join(", "),
        })
    }
}

/// A field a query names: one of the table's, or a run's value by name.
enum Resolved {
    Static(Field<'static>),
    Value { api: String, sql: String },
}

impl Resolved {
    fn field(&self) -> Field<'_> {
        match self {
            Self::Static(field) => *field,
            Self::Value { api, sql } => Field {
                api,
                sql,
                kind: Kind::Value,
                nullable: true,
            },
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Token {
    /// Sort field and direction the token was made for.
    s: String,
    d: bool,
    /// The last row's sort key and id.
    k: serde_json::Value,
    i: String,
}

fn sort_key(field: &Field) -> String {
    if !field.nullable {
        return field.sql.to_owned();
    }
    match field.kind {
        Kind::Text => format!("COALESCE({}, '')", field.sql),
        Kind::Time => format!("COALESCE({}, -1)", field.sql),
        // A run without the value sorts below every number.
        Kind::Value => format!("COALESCE({}, -1e308)", field.sql),
    }
}

fn bind(field: &Field, operand: &Operand) -> Result<Vec<SqlValue>, String> {
    let one = |operand: &Operand| -> Result<SqlValue, String> {
        match (field.kind, operand) {
            (Kind::Text, Operand::Text(t)) => Ok(SqlValue::Text(t.clone())),
            (Kind::Time, Operand::Time(ms)) => Ok(SqlValue::Integer(*ms)),
            (Kind::Time, Operand::Int(seconds)) => Ok(SqlValue::Integer(seconds * 1000)),
            (Kind::Value, Operand::Int(i)) => Ok(SqlValue::Integer(*i)),
            (Kind::Value, Operand::Double(d)) => Ok(SqlValue::Real(*d)),
            (Kind::Value, Operand::Text(t)) => Ok(SqlValue::Text(t.clone())),
            (kind, _) => Err(format!(
                "field `{}` holds {}; use {}",
                field.api,
                match kind {
                    Kind::Text => "text",
                    Kind::Time => "times",
                    Kind::Value => "numbers and text",
                },
                match kind {
                    Kind::Text => "`string_value` (or `string_values` with IN)",
                    Kind::Time => "`timestamp_value` (RFC 3339) or `long_value` (seconds)",
                    Kind::Value => "`double_value`, `long_value` or `string_value`",
                }
            )),
        }
    };
    match operand {
        Operand::Ints(list) => list.iter().map(|i| one(&Operand::Int(*i))).collect(),
        Operand::Texts(list) => list
            .iter()
            .map(|t| one(&Operand::Text(t.clone())))
            .collect(),
        single => Ok(vec![one(single)?]),
    }
}

fn condition_sql(
    conn: &Connection,
    table: &Table,
    condition: &Condition,
    args: &mut Vec<SqlValue>,
) -> Result<String, StoreError> {
    let resolved = table.field(conn, &condition.field)?;
    let field = resolved.field();
    let invalid = |message: String| StoreError::BadFilter(message);
    let values = bind(&field, &condition.operand).map_err(invalid)?;
    let list = matches!(condition.operand, Operand::Ints(_) | Operand::Texts(_));
    if list != (condition.op == Op::In) {
        return Err(invalid(format!(
            "field `{}`: IN takes a list (`string_values`, `int_values`, `long_values`), every other operation one value",
            field.api
        )));
    }
    let sql = match condition.op {
        Op::In if values.is_empty() => "0".to_owned(),
        Op::In => format!("{} IN ({})", field.sql, vec!["?"; values.len()].join(", ")),
        Op::IsSubstring => {
            if field.kind != Kind::Text {
                return Err(invalid(format!(
                    "IS_SUBSTRING needs a text field; `{}` is not one",
                    field.api
                )));
            }
            format!("instr({}, ?) > 0", field.sql)
        }
        op => {
            let symbol = match op {
                Op::Equals => "=",
                Op::NotEquals => "IS NOT",
                Op::GreaterThan => ">",
                Op::GreaterThanEquals => ">=",
                Op::LessThan => "<",
                _ => "<=",
            };
            format!("{} {symbol} ?", field.sql)
        }
    };
    args.extend(values);
    Ok(sql)
}

impl Store {
    /// One page of `table`'s rows matching `query`; `map` reads a row's selected columns.
    pub(crate) fn list<T>(
        &self,
        table: &Table,
        query: &ListQuery,
        map: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Page<T>, StoreError> {
        let sort_name = query.sort_by.as_deref().unwrap_or("created_at");
        let conn = self.conn();
        let resolved_sort = table.field(&conn, sort_name)?;
        let sort = resolved_sort.field();
        let key = sort_key(&sort);
        let id = match &table.join {
            Some(join) if sort.sql.starts_with(join.prefix) => join.id,
            _ => table.id,
        };
        let mut conditions = Vec::new();
        let mut args = Vec::new();
        for condition in &query.conditions {
            conditions.push(condition_sql(&conn, table, condition, &mut args)?);
        }
        // What the count must read: the base table, the joined one, or both.
        let counted = match &table.join {
            None => table.from.to_owned(),
            Some(join) => {
                let joined = |c: &Condition| {
                    table
                        .field(&conn, &c.field)
                        .is_ok_and(|f| f.field().sql.starts_with(join.prefix))
                };
                let on_join = query.conditions.iter().any(joined);
                let on_base = query.conditions.iter().any(|c| !joined(c));
                match (on_base, on_join) {
                    (true, true) => table.source(),
                    (false, true) => join.alone.to_owned(),
                    _ => table.from.to_owned(),
                }
            }
        };
        let filtered = if conditions.is_empty() {
            "1".to_owned()
        } else {
            conditions.join(" AND ")
        };
        let total_size: i64 = conn
            .prepare_cached(&format!("SELECT COUNT(*) FROM {counted} WHERE {filtered}"))?
            .query_row(rusqlite::params_from_iter(args.iter()), |r| r.get(0))?;
        let mut page_args = args.clone();
        let mut after = String::new();
        if let Some(token) = &query.page_token {
            let token = decode_token(token)
                .filter(|t| t.s == sort_name && t.d == query.descending)
                .ok_or_else(|| StoreError::BadPageToken(token.clone()))?;
            after = format!(
                " AND ({key}, {id}) {} (?, ?)",
                if query.descending { "<" } else { ">" }
            );
            page_args.push(match token.k {
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => SqlValue::Integer(i),
                    None => SqlValue::Real(n.as_f64().unwrap_or(-1e308)),
                },
                serde_json::Value::String(s) => SqlValue::Text(s),
                _ => SqlValue::Null,
            });
            page_args.push(SqlValue::Text(token.i));
        }
        let direction = if query.descending { "DESC" } else { "ASC" };
        let limit = query.page_size.max(1);
        let sql = format!(
            "SELECT {}, {key}, {id} FROM {} WHERE {filtered}{after} ORDER BY {key} {direction}, {id} {direction} LIMIT {}",
            table.select.join(", "),
            table.source(),
            limit + 1
        );
        let width = table.select.len();
        let mut statement = conn.prepare_cached(&sql)?;
        let mut rows = statement.query(rusqlite::params_from_iter(page_args.iter()))?;
        let mut items = Vec::new();
        let mut last: Option<(serde_json::Value, String)> = None;
        while let Some(row) = rows.next()? {
            if items.len() == limit {
                // One row more than a page: there is a next page, starting after `last`.
                let (k, i) = last.take().unwrap_or_default();
                let token = Token {
                    s: sort_name.to_owned(),
                    d: query.descending,
                    k,
                    i,
                };
                return Ok(Page {
                    items,
                    total_size,
                    next_page_token: Some(encode_token(&token)),
                });
            }
            items.push(map(row)?);
            let key_value = run_values::json_value(row.get::<_, SqlValue>(width)?);
            last = Some((key_value, row.get(width + 1)?));
        }
        Ok(Page {
            items,
            total_size,
            next_page_token: None,
        })
    }
}

fn encode_token(token: &Token) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(token).unwrap_or_default())
}

fn decode_token(text: &str) -> Option<Token> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}
