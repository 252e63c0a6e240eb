// Runs: newest first, sorted, filtered and paged by the server (keyset pages), refreshed
// every two seconds while the page is visible.
import { useState } from "preact/hooks";
import { get, listQuery, routes, type Experiment, type Page, type Predicate, type Run, type RunValues } from "../api";
import { Pager, SearchBox, usePages } from "../components/Pager";
import { CopyText, Empty, ErrorBox, Loading } from "../components/common";
import { StateBadge, isActive } from "../components/State";
import { duration, number, value, when } from "../format";
import { useLoad, useNow } from "../hooks";
import { href, navigate } from "../router";
import { parseValueFilter } from "../valueFilter";

const SORTS: Record<string, string> = {
  "created_at desc": "Newest first",
  created_at: "Oldest first",
  name: "Name A–Z",
  "name desc": "Name Z–A",
};

/** The parameter and metric columns chosen, kept in this browser. */
function useColumns(): [string[], (columns: string[]) => void] {
  const key = "kfbox.runs.columns";
  const [columns, set] = useState<string[]>(() => {
    try {
      const stored = JSON.parse(localStorage.getItem(key) ?? "[]");
      return Array.isArray(stored) ? stored.filter((c) => typeof c === "string") : [];
    } catch {
      return [];
    }
  });
  return [
    columns,
    (next) => {
      localStorage.setItem(key, JSON.stringify(next));
      set(next);
    },
  ];
}

/** `metrics.accuracy` as a column heads it: the name, and what kind of value it is. */
function columnName(name: string): [string, string] {
  const dot = name.indexOf(".");
  return [name.slice(dot + 1), name.startsWith("metrics.") ? "metric" : "parameter"];
}

const STATES = ["RUNNING", "SUCCEEDED", "FAILED", "CANCELED"];

/** Experiment names by id, loaded once per page of runs. */
function useExperimentNames(ids: string[]) {
  return useLoad(async () => {
    const unique = [...new Set(ids)].filter(Boolean);
    const names = new Map<string, string>();
    if (!unique.length) return names;
    const page = await get<Page<"experiments", Experiment>>(
      routes.experiments +
        listQuery({
          page_size: 100,
          predicates: [{ key: "experiment_id", operation: "IN", string_values: { values: unique } }],
        }),
    );
    for (const e of page.experiments ?? []) names.set(e.experiment_id, e.display_name);
    return names;
  }, [ids.join(",")]);
}

export function RunsPage() {
  return (
    <>
      <div class="page-header">
        <h1>Runs</h1>
      </div>
      <RunTable />
    </>
  );
}

export function RunTable(props: { experimentId?: string }) {
  const [sortBy, setSortBy] = useState("created_at desc");
  const [columns, setColumns] = useColumns();
  const [valueFilter, setValueFilter] = useState("");
  const [state, setState] = useState("");
  const [search, setSearch] = useState("");
  const [archived, setArchived] = useState(false);
  const [size, setSize] = useState(20);
  const pages = usePages();
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const predicates: Predicate[] = [
    { key: "storage_state", operation: "EQUALS", string_value: archived ? "ARCHIVED" : "AVAILABLE" },
  ];
  if (state) predicates.push({ key: "state", operation: "EQUALS", string_value: state });
  if (search.trim()) predicates.push({ key: "display_name", operation: "IS_SUBSTRING", string_value: search.trim() });
  // What runs have values under: the names for the column picker and the value filter.
  const names = useLoad(() => get<RunValues>(routes.runValues([])), [], { everyMs: 10000 }).data?.names;
  const parsed = valueFilter.trim() && names ? parseValueFilter(valueFilter, names) : { predicates: [] };
  if ("predicates" in parsed) predicates.push(...parsed.predicates);
  const query = listQuery({
    page_size: size,
    page_token: pages.token,
    sort_by: sortBy,
    predicates,
    experiment_id: props.experimentId,
  });
  const runs = useLoad(() => get<Page<"runs", Run>>(routes.runs + query), [query], { everyMs: 2000 });
  const list = runs.data?.runs ?? [];
  const ids = list.map((r) => r.run_id).join(",");
  const values = useLoad(
    () => (columns.length && ids ? get<RunValues>(routes.runValues(ids.split(","))) : Promise.resolve(undefined)),
    [ids, columns.join(","), runs.data],
  );
  const sortByColumn = (name: string) => {
    setSortBy(sortBy === `${name} desc` ? name : `${name} desc`);
    pages.restart();
  };
  const now = useNow(list.some((r) => isActive(r.state)));
  const experiments = useExperimentNames(list.map((r) => r.experiment_id));
  const restart = pages.restart;
  const first = pages.depth * size;
  const filtered = !!(state || search.trim() || archived || valueFilter.trim());

  const toggle = (id: string) =>
    setSelected((s) => {
      const next = new Set(s);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  return (
    <div class="runs">
      <div class="toolbar" role="search">
        <SearchBox value={search} onChange={setSearch} label="Filter by run name" pages={pages} />
        <label>
          State{" "}
          <select
            value={state}
            onChange={(e) => {
              setState((e.target as HTMLSelectElement).value);
              restart();
            }}
          >
            <option value="">Any</option>
            {STATES.map((s) => (
              <option value={s} key={s}>
                {s.charAt(0) + s.slice(1).toLowerCase()}
              </option>
            ))}
          </select>
        </label>
        <label>
          Sort{" "}
          <select
            value={sortBy}
            onChange={(e) => {
              setSortBy((e.target as HTMLSelectElement).value);
              restart();
            }}
          >
            {Object.entries(SORTS).map(([k, label]) => (
              <option value={k} key={k}>
                {label}
              </option>
            ))}
            {sortBy in SORTS ? null : (
              <option value={sortBy}>
                By {columnName(sortBy.replace(/ desc$/, ""))[0]} {sortBy.endsWith(" desc") ? "(highest first)" : "(lowest first)"}
              </option>
            )}
          </select>
        </label>
        <input
          type="search"
          class="value-filter"
          placeholder="Filter by value: accuracy > 0.9 and model = rf"
          aria-label="Filter by parameter or metric"
          aria-invalid={"error" in parsed}
          value={valueFilter}
          onInput={(e) => {
            setValueFilter((e.target as HTMLInputElement).value);
            restart();
          }}
        />
        <details class="columns-picker">
          <summary>Columns{columns.length ? ` (${columns.length})` : ""}</summary>
          <fieldset>
            <legend>Parameters and metrics to show</legend>
            {names?.length ? (
              names.map((name) => {
                const [short, kind] = columnName(name);
                return (
                  <label class="check" key={name}>
                    <input
                      type="checkbox"
                      checked={columns.includes(name)}
                      onChange={(e) =>
                        setColumns(
                          (e.target as HTMLInputElement).checked ? [...columns, name] : columns.filter((c) => c !== name),
                        )
                      }
                    />{" "}
                    {short} <span class="muted">{kind}</span>
                  </label>
                );
              })
            ) : (
              <p class="muted">No run has parameters or metrics yet.</p>
            )}
          </fieldset>
        </details>
        <label class="check">
          <input
            type="checkbox"
            checked={archived}
            onChange={(e) => {
              setArchived((e.target as HTMLInputElement).checked);
              restart();
            }}
          />{" "}
          Archived
        </label>
        <button
          type="button"
          class="primary"
          disabled={selected.size < 2}
          onClick={() => navigate("/compare", { runlist: [...selected].join(",") })}
          title="Select two or more runs to compare"
        >
          Compare {selected.size >= 2 ? selected.size : ""} runs
        </button>
      </div>
      {"error" in parsed ? (
        <p class="field-error" role="alert">
          {parsed.error}
        </p>
      ) : null}
      <ErrorBox error={runs.error} title="Cannot list runs" />
      {runs.loading && !runs.data ? (
        <Loading what="runs" />
      ) : list.length === 0 && !filtered && pages.depth === 0 ? (
        <NoRuns />
      ) : (
        <>
          <table class="list runs-table">
            <thead>
              <tr>
                <th scope="col" class="select">
                  <span class="sr-only">Select</span>
                </th>
                <th scope="col">Run</th>
                <th scope="col">State</th>
                <th scope="col">Pipeline</th>
                {props.experimentId ? null : <th scope="col">Experiment</th>}
                <th scope="col">Started</th>
                <th scope="col">Duration</th>
                {columns.map((name) => {
                  const [short, kind] = columnName(name);
                  const sorted = sortBy === name ? "ascending" : sortBy === `${name} desc` ? "descending" : undefined;
                  return (
                    <th scope="col" key={name} class="num" aria-sort={sorted} data-column={name}>
                      <button type="button" class="column-sort" title={`Sort by ${name}`} onClick={() => sortByColumn(name)}>
                        {short} <span class="muted">{kind}</span>
                        {sorted === "ascending" ? " ▲" : sorted === "descending" ? " ▼" : ""}
                      </button>
                    </th>
                  );
                })}
              </tr>
            </thead>
            <tbody>
              {list.map((run) => (
                <tr key={run.run_id} data-run-id={run.run_id} data-state={run.state}>
                  <td class="select">
                    <input
                      type="checkbox"
                      aria-label={`Select ${run.display_name}`}
                      checked={selected.has(run.run_id)}
                      onChange={() => toggle(run.run_id)}
                    />
                  </td>
                  <td>
                    <a href={href(`/runs/details/${run.run_id}`)}>{run.display_name}</a>
                  </td>
                  <td>
                    <StateBadge state={run.state} />
                  </td>
                  <td>{run.pipeline_name ?? "—"}</td>
                  {props.experimentId ? null : (
                    <td>
                      <a href={href(`/experiments/details/${run.experiment_id}`)}>
                        {experiments.data?.get(run.experiment_id) ?? "…"}
                      </a>
                    </td>
                  )}
                  <td>{when(run.created_at)}</td>
                  <td class="num">{duration(run.created_at, run.finished_at, now)}</td>
                  {columns.map((name) => {
                    const v = values.data?.runs[run.run_id]?.[name];
                    return (
                      <td key={name} class="num" data-column={name}>
                        {v === undefined ? "—" : typeof v === "number" ? number(v) : value(v)}
                      </td>
                    );
                  })}
                </tr>
              ))}
            </tbody>
          </table>
          {list.length === 0 ? <p class="muted">No runs match.</p> : null}
          <Pager pages={pages} next={runs.data?.next_page_token} label="Pages of runs">
            <span class="muted">
              {list.length ? `${(first + 1).toLocaleString()}–${(first + list.length).toLocaleString()}` : "0"} of{" "}
              {(runs.data?.total_size ?? 0).toLocaleString()}
            </span>
            <label>
              Rows{" "}
              <select
                value={size}
                onChange={(e) => {
                  setSize(Number((e.target as HTMLSelectElement).value));
                  restart();
                }}
              >
                {[20, 50, 100].map((n) => (
                  <option key={n} value={n}>
                    {n}
                  </option>
                ))}
              </select>
            </label>
          </Pager>
        </>
      )}
    </div>
  );
}

function NoRuns() {
  const host = location.origin;
  return (
    <Empty title="No runs yet">
      <p>Start one in any of these ways; it shows up here as it runs.</p>
      <ol class="how">
        <li>
          From a terminal, run a compiled pipeline: <CopyText text="kfbox run pipeline.yaml" />
        </li>
        <li>
          From Python, with the Kubeflow Pipelines SDK:
          <CopyText text={`kfp.Client(host="${host}").create_run_from_pipeline_func(my_pipeline, arguments={})`} label="the Python line" />
        </li>
        <li>
          Or <a href={href("/pipelines")}>upload a pipeline</a> and start it from its page.
        </li>
      </ol>
    </Empty>
  );
}
