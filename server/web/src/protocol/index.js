// The Townhall protocol library for the browser (and Node 20+): one import for everything.
export * from "./messages.js";
export * from "./quant.js";
export * from "./clock.js";
export * from "./connection.js";
export * from "./state.js";
