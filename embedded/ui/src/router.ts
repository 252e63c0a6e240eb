// Hash routes, as the Kubeflow Pipelines UI has them, so the links the kfp SDK prints
// (`{host}/#/runs/details/{id}`) open the right page.
import { useEffect, useState } from "preact/hooks";

export type Route = { path: string[]; query: URLSearchParams };

export function parse(hash: string): Route {
  const text = hash.replace(/^#\/?/, "");
  const [path, query = ""] = text.split("?", 2);
  return {
    path: path.split("/").filter(Boolean).map(decodeURIComponent),
    query: new URLSearchParams(query),
  };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parse(location.hash));
  useEffect(() => {
    const changed = () => setRoute(parse(location.hash));
    addEventListener("hashchange", changed);
    return () => removeEventListener("hashchange", changed);
  }, []);
  return route;
}

export function href(path: string, query?: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v) q.set(k, v);
  const text = q.toString();
  return `#${path}${text ? `?${text}` : ""}`;
}

export function navigate(path: string, query?: Record<string, string | undefined>) {
  location.hash = href(path, query);
}

/** Change the query of the current route without adding a history entry. */
export function replaceQuery(query: Record<string, string | undefined>) {
  const route = parse(location.hash);
  const target = href(`/${route.path.map(encodeURIComponent).join("/")}`, query);
  history.replaceState(null, "", target);
  dispatchEvent(new HashChangeEvent("hashchange"));
}
