// The pages' words in the attendee's language: one catalogue per language (en.json, uk.json,
// the same keys in each), chosen from the browser's languages (navigator.languages) unless
// the person picked one with the switch on the page (kept in localStorage).
//
// t("key", {name: "Ada"}) fills {name} in the catalogue's text; a key missing from a
// catalogue falls back to English. Static text in the HTML carries data-i18n="key" (its
// text) or data-i18n-attr="aria-label:key;placeholder:key" and is filled by translatePage().
import en from "./en.json";
import uk from "./uk.json";

export const CATALOGUES = { en, uk };
export const LANGUAGE_NAMES = { en: "English", uk: "Українська" };
const STORAGE_KEY = "townhall.lang";

function stored() {
  try {
    return globalThis.localStorage?.getItem(STORAGE_KEY) ?? null;
  } catch {
    return null; // storage blocked: the browser's languages decide
  }
}

/** The catalogue to use: the stored choice, else the first browser language we have. */
export function pickLanguage(languages = globalThis.navigator?.languages ?? [], choice = stored()) {
  if (choice && CATALOGUES[choice]) return choice;
  for (const tag of languages) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (CATALOGUES[base]) return base;
  }
  return "en";
}

let language = "en";
let catalogue = en;

export function setLanguage(lang) {
  language = CATALOGUES[lang] ? lang : "en";
  catalogue = CATALOGUES[language];
  if (globalThis.document) document.documentElement.lang = language;
}

export function currentLanguage() {
  return language;
}

/** The text for `key` with {placeholders} filled from `vars`. */
export function t(key, vars) {
  const text = catalogue[key] ?? en[key] ?? key;
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/** Fill every data-i18n element's text and data-i18n-attr attributes under `root`. */
export function translatePage(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":");
      if (attr && key) el.setAttribute(attr.trim(), t(key.trim()));
    }
  }
}

/** A <select> that switches language: remembered, then the page reloads in it. */
export function languageSwitch(select) {
  if (!select) return;
  select.replaceChildren(
    ...Object.entries(LANGUAGE_NAMES).map(([code, name]) => {
      const option = document.createElement("option");
      option.value = code;
      option.lang = code;
      option.textContent = name;
      return option;
    }),
  );
  select.value = language;
  select.addEventListener("change", () => {
    try {
      localStorage.setItem(STORAGE_KEY, select.value);
    } catch {
      /* not remembered: this page load only */
    }
    location.reload();
  });
}

setLanguage(pickLanguage());
