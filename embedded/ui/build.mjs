// Builds src/ into dist/ (index.html, app.js, app.css), the files kfbox compiles into its
// binary. The output depends only on the sources and the locked package versions, so CI can
// rebuild it and compare with the committed copy.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

mkdirSync("dist", { recursive: true });
await build({
  entryPoints: { app: "src/main.tsx" },
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2022",
  jsx: "automatic",
  jsxImportSource: "preact",
  outdir: "dist",
  legalComments: "eof",
  logLevel: "warning",
});
copyFileSync("src/index.html", "dist/index.html");
let total = 0;
for (const file of ["index.html", "app.js", "app.css"]) {
  const bytes = readFileSync(`dist/${file}`);
  const gzipped = gzipSync(bytes, { level: 9 }).length;
  total += gzipped;
  console.log(`dist/${file}: ${(bytes.length / 1024).toFixed(1)} KiB, ${(gzipped / 1024).toFixed(1)} KiB gzipped`);
}
console.log(`total: ${(total / 1024).toFixed(1)} KiB gzipped`);
