"""The pages' catalogues: every key in every language, the same placeholders, and every key
the pages use is in them."""

from __future__ import annotations

import json
import re
from pathlib import Path

SRC = Path(__file__).parent.parent / "server" / "web" / "src"
I18N = SRC / "i18n"


def catalogues() -> dict[str, dict[str, str]]:
    return {p.stem: json.loads(p.read_text("utf-8")) for p in sorted(I18N.glob("*.json"))}


def test_every_key_is_in_every_catalogue_with_the_same_placeholders() -> None:
    cats = catalogues()
    assert {"en", "uk"} <= set(cats)
    en = cats["en"]
    for lang, cat in cats.items():
        missing = sorted(set(en) - set(cat))
        extra = sorted(set(cat) - set(en))
        assert not missing and not extra, (lang, missing, extra)
        for key, text in cat.items():
            assert isinstance(text, str) and text.strip(), (lang, key)
            assert set(re.findall(r"\{(\w+)\}", text)) == set(re.findall(r"\{(\w+)\}", en[key])), (
                lang,
                key,
            )


def test_the_ukrainian_catalogue_is_ukrainian() -> None:
    """Not English copied over: most entries hold Cyrillic and differ from English."""
    cats = catalogues()
    same = [k for k, v in cats["uk"].items() if v == cats["en"][k]]
    cyrillic = [k for k, v in cats["uk"].items() if re.search("[а-яіїєґ]", v, re.I)]
    assert len(same) <= 3, same
    assert len(cyrillic) >= 0.95 * len(cats["uk"])


TABLED = (
    r'"((?:join|event|mod\.event|mod\.fatal|mod\.state|mod\.label|mod\.outcome|board\.state)'
    r'\.[\w.]+)"'
)


def used_keys() -> set[str]:
    keys: set[str] = set()
    for path in [*SRC.glob("watch/*"), *SRC.glob("moderate/*")]:
        text = path.read_text("utf-8")
        keys.update(re.findall(r"""\bt\(\s*["']([\w.]+)["']""", text))
        keys.update(re.findall(r'data-i18n="([\w.]+)"', text))
        keys.update(re.findall(r'dataset\.i18n = "([\w.]+)"', text))
        for attrs in re.findall(r'data-i18n-attr="([^"]+)"', text):
            keys.update(pair.split(":")[1] for pair in attrs.split(";"))
        # Tables of keys (error titles and bodies, states): quoted dotted names.
        keys.update(re.findall(TABLED, text))
    return keys


def test_every_key_the_pages_use_is_in_the_catalogue() -> None:
    en = catalogues()["en"]
    used = used_keys()
    assert len(used) > 100
    assert sorted(used - set(en)) == []
