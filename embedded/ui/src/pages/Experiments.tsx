// Experiments: list, create, archive; an experiment's page lists its runs.
import { useState } from "preact/hooks";
import { get, listQuery, post, routes, type Experiment, type Page } from "../api";
import { Pager, usePages } from "../components/Pager";
import { Empty, ErrorBox, Loading } from "../components/common";
import { when } from "../format";
import { useLoad } from "../hooks";
import { href, navigate } from "../router";
import { RunTable } from "./Runs";

export function ExperimentsPage() {
  const pages = usePages();
  const [archived, setArchived] = useState(false);
  const query = listQuery({
    page_size: 20,
    page_token: pages.token,
    sort_by: "created_at desc",
    predicates: [{ key: "storage_state", operation: "EQUALS", string_value: archived ? "ARCHIVED" : "AVAILABLE" }],
  });
  const experiments = useLoad(() => get<Page<"experiments", Experiment>>(routes.experiments + query), [query], { everyMs: 5000 });
  const list = experiments.data?.experiments ?? [];
  return (
    <>
      <div class="page-header">
        <h1>Experiments</h1>
      </div>
      <CreateExperiment />
      <div class="toolbar">
        <label class="check">
          <input
            type="checkbox"
            checked={archived}
            onChange={(e) => {
              setArchived((e.target as HTMLInputElement).checked);
              pages.restart();
            }}
          />{" "}
          Archived
        </label>
      </div>
      <ErrorBox error={experiments.error} title="Cannot list experiments" />
      {experiments.loading && !experiments.data ? (
        <Loading what="experiments" />
      ) : !list.length ? (
        <Empty title={archived ? "No archived experiments" : "No experiments"}>
          <p>Experiments group runs. Runs started without one go to Default.</p>
        </Empty>
      ) : (
        <>
          <table class="list">
            <thead>
              <tr>
                <th scope="col">Experiment</th>
                <th scope="col">Description</th>
                <th scope="col">Created</th>
                <th scope="col">Last run</th>
              </tr>
            </thead>
            <tbody>
              {list.map((e) => (
                <tr key={e.experiment_id}>
                  <td>
                    <a href={href(`/experiments/details/${e.experiment_id}`)}>{e.display_name}</a>
                  </td>
                  <td>{e.description || <span class="muted">—</span>}</td>
                  <td>{when(e.created_at)}</td>
                  <td>{when(e.last_run_created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager pages={pages} next={experiments.data?.next_page_token} label="Pages of experiments">
            <span class="muted">{(experiments.data?.total_size ?? 0).toLocaleString()} experiments</span>
          </Pager>
        </>
      )}
    </>
  );
}

function CreateExperiment() {
  const [error, setError] = useState<string>();
  const submit = async (ev: Event) => {
    ev.preventDefault();
    const form = ev.target as HTMLFormElement;
    const name = (form.elements.namedItem("name") as HTMLInputElement).value.trim();
    const description = (form.elements.namedItem("description") as HTMLInputElement).value.trim();
    if (!name) return setError("Give the experiment a name.");
    try {
      const e = await post<Experiment>(routes.experiments, { display_name: name, description });
      navigate(`/experiments/details/${e.experiment_id}`);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <form class="card" onSubmit={submit} aria-label="New experiment">
      <h2>New experiment</h2>
      <div class="row">
        <label>
          Name <input type="text" name="name" />
        </label>
        <label>
          Description <input type="text" name="description" />
        </label>
        <button type="submit" class="primary">
          Create
        </button>
      </div>
      <ErrorBox error={error} title="Not created" />
    </form>
  );
}

export function ExperimentDetails(props: { experimentId: string }) {
  const experiment = useLoad(() => get<Experiment>(routes.experiment(props.experimentId)), [props.experimentId]);
  const [error, setError] = useState<string>();
  if (experiment.error) return <ErrorBox error={experiment.error} title={`Cannot show experiment ${props.experimentId}`} />;
  if (!experiment.data) return <Loading what="the experiment" />;
  const e = experiment.data;
  const archived = e.storage_state === "ARCHIVED";
  const toggle = async () => {
    try {
      await post(`${routes.experiment(e.experiment_id)}:${archived ? "unarchive" : "archive"}`);
      experiment.reload();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <>
      <div class="page-header">
        <div>
          <p class="crumbs">
            <a href={href("/experiments")}>Experiments</a>
          </p>
          <h1>
            {e.display_name} {archived ? <span class="type-tag">archived</span> : null}
          </h1>
          {e.description ? <p class="muted">{e.description}</p> : null}
        </div>
        <div class="actions">
          {e.display_name !== "Default" ? (
            <button type="button" onClick={toggle}>
              {archived ? "Restore" : "Archive"}
            </button>
          ) : null}
        </div>
      </div>
      <ErrorBox error={error} title="The server refused" />
      <RunTable experimentId={e.experiment_id} />
    </>
  );
}
