// Recurring runs: list, enable, disable, delete, and create from a pipeline version.
import { useState } from "preact/hooks";
import {
  del,
  get,
  listQuery,
  post,
  routes,
  type Page,
  type Pipeline,
  type PipelineVersion,
  type RecurringRun,
} from "../api";
import { ParamInputs, collect, rootParameters, useParamFields } from "../components/ParamForm";
import { Empty, ErrorBox, Loading } from "../components/common";
import { when } from "../format";
import { useLoad } from "../hooks";
import { href } from "../router";

function trigger(r: RecurringRun): string {
  const cron = r.trigger?.cron_schedule?.cron;
  if (cron) return `cron ${cron}`;
  const every = r.trigger?.periodic_schedule?.interval_second;
  if (every) return `every ${every} s`;
  return "—";
}

export function RecurringPage() {
  const list = useLoad(
    () => get<Page<"recurringRuns", RecurringRun>>(routes.recurringRuns + listQuery({ page_size: 100, sort_by: "created_at desc" })),
    [],
    { everyMs: 5000 },
  );
  const [error, setError] = useState<string>();
  const runs = list.data?.recurringRuns ?? [];
  const act = async (r: RecurringRun, verb: "enable" | "disable" | "delete") => {
    setError(undefined);
    try {
      if (verb === "delete") await del(routes.recurringRun(r.recurring_run_id));
      else await post(`${routes.recurringRun(r.recurring_run_id)}:${verb}`);
      list.reload();
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <>
      <div class="page-header">
        <h1>Recurring runs</h1>
      </div>
      <CreateRecurring onDone={list.reload} />
      <ErrorBox error={error ?? list.error} title="The server refused" />
      {list.loading && !list.data ? (
        <Loading what="recurring runs" />
      ) : !runs.length ? (
        <Empty title="No recurring runs">
          <p>A recurring run starts a pipeline on a cron schedule or every N seconds. Create one above.</p>
        </Empty>
      ) : (
        <table class="list">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Status</th>
              <th scope="col">Trigger</th>
              <th scope="col">Created</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {runs.map((r) => (
              <tr key={r.recurring_run_id} data-recurring-id={r.recurring_run_id}>
                <td>{r.display_name}</td>
                <td>
                  <span class={`state-badge ${r.status === "ENABLED" ? "state-SUCCEEDED" : "state-NOT_RUN"}`}>
                    {r.status === "ENABLED" ? "● Enabled" : "○ Disabled"}
                  </span>
                </td>
                <td>
                  <code>{trigger(r)}</code>
                </td>
                <td>{when(r.created_at)}</td>
                <td class="actions">
                  {r.status === "ENABLED" ? (
                    <button type="button" onClick={() => act(r, "disable")}>
                      Disable
                    </button>
                  ) : (
                    <button type="button" onClick={() => act(r, "enable")}>
                      Enable
                    </button>
                  )}
                  <button type="button" class="danger" onClick={() => act(r, "delete")}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

function CreateRecurring(props: { onDone: () => void }) {
  const pipelines = useLoad(() => get<Page<"pipelines", Pipeline>>(routes.pipelines + listQuery({ page_size: 100, sort_by: "created_at desc" })), []);
  const [pipelineId, setPipelineId] = useState("");
  const versions = useLoad(
    async () =>
      pipelineId
        ? (await get<Page<"pipeline_versions", PipelineVersion>>(routes.versions(pipelineId) + listQuery({ page_size: 1, sort_by: "created_at desc" }))).pipeline_versions ?? []
        : [],
    [pipelineId],
  );
  const version = versions.data?.[0];
  if (!pipelines.data) return null;
  if (!pipelines.data.pipelines?.length)
    return (
      <p class="muted card">
        Recurring runs start uploaded pipelines: <a href={href("/pipelines")}>upload one</a> first.
      </p>
    );
  return (
    <div class="card">
      <h2>New recurring run</h2>
      <label for="recurring-pipeline">Pipeline (its newest version)</label>
      <select id="recurring-pipeline" value={pipelineId} onChange={(e) => setPipelineId((e.target as HTMLSelectElement).value)}>
        <option value="">Choose…</option>
        {pipelines.data.pipelines.map((p) => (
          <option key={p.pipeline_id} value={p.pipeline_id}>
            {p.display_name}
          </option>
        ))}
      </select>
      {version ? <RecurringForm key={version.pipeline_version_id} version={version} onDone={props.onDone} /> : null}
    </div>
  );
}

function RecurringForm(props: { version: PipelineVersion; onDone: () => void }) {
  const v = props.version;
  const [fields, setFields] = useParamFields(rootParameters(v.pipeline_spec));
  // Checked as the user types once a submit was tried.
  const [tried, setTried] = useState(false);
  const problems = tried ? collect(fields).problems : {};
  const [error, setError] = useState<string>();
  const [kind, setKind] = useState<"periodic" | "cron">("periodic");
  const submit = async (ev: Event) => {
    ev.preventDefault();
    const form = ev.target as HTMLFormElement;
    const input = (n: string) => (form.elements.namedItem(n) as HTMLInputElement | null)?.value.trim() ?? "";
    const { values, problems } = collect(fields);
    setTried(true);
    if (Object.keys(problems).length) return setError("Some parameters need another value.");
    const name = input("name");
    if (!name) return setError("Give the recurring run a name.");
    const every = Number(input("every"));
    if (kind === "periodic" && !(every >= 1)) return setError("The period is a number of seconds, 1 or more.");
    if (kind === "cron" && input("cron").split(/\s+/).length !== 6)
      return setError("A cron schedule has six fields: seconds minutes hours day-of-month month day-of-week.");
    try {
      await post(routes.recurringRuns, {
        display_name: name,
        mode: "ENABLE",
        max_concurrency: input("concurrency") || "1",
        no_catchup: !(form.elements.namedItem("catchup") as HTMLInputElement).checked,
        pipeline_version_reference: { pipeline_id: v.pipeline_id, pipeline_version_id: v.pipeline_version_id },
        runtime_config: { parameters: values },
        trigger: kind === "cron" ? { cron_schedule: { cron: input("cron") } } : { periodic_schedule: { interval_second: String(every) } },
      });
      setError(undefined);
      form.reset();
      props.onDone();
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <form onSubmit={submit} noValidate aria-label="New recurring run">
      <label for="recurring-name">Name</label>
      <input id="recurring-name" name="name" type="text" />
      <fieldset>
        <legend>Trigger</legend>
        <label class="check">
          <input type="radio" name="kind" checked={kind === "periodic"} onChange={() => setKind("periodic")} /> Every
        </label>{" "}
        <input name="every" type="number" min="1" value="3600" aria-label="Period in seconds" disabled={kind !== "periodic"} /> seconds
        <br />
        <label class="check">
          <input type="radio" name="kind" checked={kind === "cron"} onChange={() => setKind("cron")} /> Cron
        </label>{" "}
        <input name="cron" type="text" placeholder="0 0 * * * *" aria-label="Cron schedule, six fields" disabled={kind !== "cron"} />
      </fieldset>
      <label for="recurring-concurrency">Runs at once (1–10)</label>
      <input id="recurring-concurrency" name="concurrency" type="number" min="1" max="10" value="1" />
      <label class="check">
        <input name="catchup" type="checkbox" /> Catch up on missed runs
      </label>
      <h3>Parameters</h3>
      <ParamInputs fields={fields} setFields={setFields} problems={problems} />
      <ErrorBox error={error} title="Not created" />
      <button type="submit" class="primary">
        Create
      </button>
    </form>
  );
}
