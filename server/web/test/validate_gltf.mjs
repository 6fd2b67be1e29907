// Validates glTF/GLB files with the Khronos glTF-Validator (npm gltf-validator) and prints
// one JSON report per file: {file, errors, warnings, infos, messages: [first 50]}.
// Usage: node test/validate_gltf.mjs FILE...   Exit status 1 if any file has errors.
import { readFile } from "node:fs/promises";
import validator from "gltf-validator";

let failed = false;
for (const file of process.argv.slice(2)) {
  const data = new Uint8Array(await readFile(file));
  const report = await validator.validateBytes(data, {
    uri: file,
    maxIssues: 500,
    externalResourceFunction: () => Promise.reject(new Error("no external resources")),
  });
  const { numErrors, numWarnings, numInfos, messages } = report.issues;
  failed ||= numErrors > 0;
  console.log(
    JSON.stringify({
      file,
      errors: numErrors,
      warnings: numWarnings,
      infos: numInfos,
      messages: messages.slice(0, 50).map((m) => `${m.severity} ${m.code} ${m.pointer ?? ""}: ${m.message}`),
      info: report.info,
    }),
  );
}
process.exit(failed ? 1 : 0);
