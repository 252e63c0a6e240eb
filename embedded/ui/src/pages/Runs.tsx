// Runs: newest first, sorted, filtered and paged by the server (keyset pages), refreshed
// every two seconds while the page is visible.
import { useState } from "preact/hooks";
import { get, listQuery, routes, type Experiment, type Page, type Predicate, type Run } from "../api";
import { Pager, SearchBox, usePages } from "../components/Pager";
import { CopyText, Empty, ErrorBox, Loading } from "../components/common";
import { StateBadge, isActive } from "../components/State";
import { duration, when } from "../format";
import { useLoad, useNow } from "../hooks";
import { href, navigate } from "../router";

const SORTS = {
  newest: { label: "Newest first", sort_by: "created_at desc" },
  oldest: { label: "Oldest first", sort_by: "created_at" },
  name: { label: "Name A–Z", sort_by: "name" },
  "name-desc": { label: "Name Z–A", sort_by: "name desc" },
} as const;
type SortKey = keyof typeof SORTS;

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
  const [sort, setSort] = useState<SortKey>("newest");
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
  const query = listQuery({
    page_size: size,
    page_token: pages.token,
    sort_by: SORTS[sort].sort_by,
    predicates,
    experiment_id: props.experimentId,
  });
  const runs = useLoad(() => get<Page<"runs", Run>>(routes.runs + query), [query], { everyMs: 2000 });
  const list = runs.data?.runs ?? [];
  const now = useNow(list.some((r) => isActive(r.state)));
  const experiments = useExperimentNames(list.map((r) => r.experiment_id));
  const restart = pages.restart;
  const first = pages.depth * size;
  const filtered = !!(state || search.trim() || archived);

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
            value={sort}
            onChange={(e) => {
              setSort((e.target as HTMLSelectElement).value as SortKey);
              restart();
            }}
          >
            {Object.entries(SORTS).map(([k, v]) => (
              <option value={k} key={k}>
                {v.label}
              </option>
            ))}
          </select>
        </label>
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
