// Bundles the pages into dist/ with esbuild: dist/watch.html, dist/moderate.html, dist/assets/*.
// Run by `make setup` (npm ci && npm run build); pages load nothing from the network.
import { build } from "esbuild";
import { cpSync, mkdirSync, rmSync, existsSync } from "node:fs";

const pages = ["watch", "moderate", "studio"].filter((p) => existsSync(`src/${p}/main.js`));
rmSync("dist", { recursive: true, force: true });
mkdirSync("dist/assets", { recursive: true });
await build({
  entryPoints: Object.fromEntries(pages.map((p) => [p, `src/${p}/main.js`])),
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: true,
  outdir: "dist/assets",
  logLevel: "info",
});
for (const p of pages) cpSync(`src/${p}/${p}.html`, `dist/${p}.html`);
if (existsSync("src/static")) cpSync("src/static", "dist/assets", { recursive: true });
console.log(`built ${pages.join(", ") || "no pages yet"} into dist/`);
