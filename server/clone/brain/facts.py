"""The checkable facts of a sentence: numbers, dates, names and places.

A generated sentence may only state facts its cited statements state. Facts are reduced
to canonical tokens so they compare across wording and language: "10", "ten", "десять"
and "десяти" are all ``n:10``; "a third" and "третина" are ``n:3``; "March", "березня"
and "марта" are ``month:3``; "next week" and "наступного тижня" are ``next:week``.
Names and places are capitalised words inside a sentence, transliterated to Latin so
"Львів" matches "Lviv". The lists are small on purpose: a sentence that states a fact
in a form they miss is still checked by the grounding and commitment checks.
"""

from __future__ import annotations

import re

from townhall.server.core.textnorm import fold

_DIGITS_RE = re.compile(r"\d+(?:[.,]\d+)*")
_WORD_RE = re.compile(r"[^\W\d_]+(?:['’ʼ][^\W\d_]+)*")
_PERCENT_RE = re.compile(r"%|\bper ?cent\b|\bвідсот\w*|\bпроцент\w*", re.IGNORECASE)

# value: words (folded, whole words; a trailing "*" matches any ending)
_NUMBER_TABLE = """
0: zero nought нуль нуля нулю нол* ноль
2: two second twice double pair couple два дві двох двом двома двоє двічі подвій*
2: другий друга другу другої другого другому другим другій
2: второй второго вторая вторую две двух двум двумя дважды
3: three third thirds triple thrice три трьох трьом трьома трох третин* третій третя третю
3: третього тричі трёх трех трем тремя трет* трое трижды
4: four fourth quarter quarters чотири чотирьох чверт* четвер* четыре четырёх четырех
5: five fifth пять п'ять п'яти п'ятий пятый пяти п'ятеро
6: six sixth шість шести шостий шесть шестой
7: seven seventh сім семи сьомий семь седьмой
8: eight eighth вісім восьми восьмий восемь восьмой
9: nine ninth дев'ять дев'яти дев'ятий девять девятый
10: ten tenth десять десяти десятий десятой десяток десятк*
11: eleven одинадцят* одиннадцат*
12: twelve dozen dozens дванадцят* двенадцат* дюжин*
13: thirteen тринадцят* тринадцат*
14: fourteen чотирнадцят* четырнадцат*
15: fifteen п'ятнадцят* пятнадцат*
16: sixteen шістнадцят* шестнадцат*
17: seventeen сімнадцят* семнадцат*
18: eighteen вісімнадцят* восемнадцат*
19: nineteen дев'ятнадцят* девятнадцат*
20: twenty twentieth двадцят* двадцат*
30: thirty тридцят* тридцат*
40: forty сорок*
50: fifty п'ятдесят* пятьдесят* пятидесят*
60: sixty шістдесят* шестьдесят*
70: seventy сімдесят* семьдесят*
80: eighty вісімдесят* восемьдесят*
90: ninety дев'яносто девяносто
100: hundred hundreds сто сотн* сотен
1000: thousand thousands тисяч* тысяч*
1/2: half halves halve половин* пів полови*
1e6: million millions мільйон* миллион* млн
1e9: billion billions мільярд* миллиард* млрд
"""

_MONTH_TABLE = """
1: january jan січ* январ*
2: february feb лют* феврал*
3: march берез* март марта марте
4: april apr квіт* апрел*
5: may трав* мая мае
6: june jun черв* июн*
7: july jul лип* июл*
8: august aug серп* август*
9: september sept вересн* вересен* сентябр*
10: october oct жовт* октябр*
11: november nov листопад* ноябр*
12: december dec груд* декабр*
"""

_WEEKDAY_TABLE = """
1: monday mondays понеділ* понедельник*
2: tuesday tuesdays вівтор* вторник*
3: wednesday wednesdays серед* сред*
4: thursday thursdays четвер* четверг*
5: friday fridays п'ятниц* пятниц*
6: saturday saturdays субот*
7: sunday sundays неділ* воскресень* воскресенье
"""

_SEASON_TABLE = """
spring: spring весн* весен*
summer: summer літ* лето лета летом
autumn: autumn fall осін* осен* осени
winter: winter зим*
today: today tomorrow tonight yesterday сьогодні завтра вчора сегодня вчера
weekend: weekend weekends вихідн* выходн*
"""

_RELATIVE_RE = re.compile(
    r"\b(?:next|coming|following|наступн\w*|следующ\w*|ближч\w*|ближайш\w*)\s+"
    r"(?:\w+\s+)?(week|month|quarter|year|spring|summer|autumn|fall|winter|"
    r"тиж\w*|місяц\w*|квартал\w*|рок\w*|рік|недел\w*|месяц\w*|год\w*|лет\w*)",
    re.IGNORECASE,
)
_RELATIVE_UNIT = {
    "тиж": "week", "недел": "week", "місяц": "month", "месяц": "month", "квартал": "quarter",
    "рок": "year", "рік": "year", "год": "year", "лет": "year", "fall": "autumn",
}  # fmt: skip
_QUARTER_RE = re.compile(r"\b[qк][1-4]\b", re.IGNORECASE)

#: Capitalised words that are no name: the pronoun "I", "AI" (the clone says it is one).
_NOT_NAMES = frozenset({"i", "ai", "ші", "ии", "ok"})

_TRANSLIT = str.maketrans(
    {
        "а": "a", "б": "b", "в": "v", "г": "h", "ґ": "g", "д": "d", "е": "e", "є": "ye",
        "ж": "zh", "з": "z", "и": "y", "і": "i", "ї": "yi", "й": "y", "к": "k", "л": "l",
        "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u",
        "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ь": "",
        "ю": "yu", "я": "ya", "ё": "yo", "ы": "y", "э": "e", "ъ": "", "'": "", "’": "",
    }
)  # fmt: skip


def _parse(table: str) -> list[tuple[str, re.Pattern[str]]]:
    rows = []
    for line in table.strip().splitlines():
        value, _, names = line.partition(":")
        alternatives = [
            re.escape(n[:-1]) + r"\w*" if n.endswith("*") else re.escape(n) for n in names.split()
        ]
        rows.append((value.strip(), re.compile(rf"^(?:{'|'.join(alternatives)})$")))
    return rows


_NUMBERS = _parse(_NUMBER_TABLE)
_MONTHS = _parse(_MONTH_TABLE)
_WEEKDAYS = _parse(_WEEKDAY_TABLE)
_SEASONS = _parse(_SEASON_TABLE)


def _lookup(word: str, table: list[tuple[str, re.Pattern[str]]]) -> str | None:
    return next((value for value, pattern in table if pattern.match(word)), None)


def _digits(token: str) -> str:
    """ "12,000" and "12000" alike; "3.5" kept as a decimal."""
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+", token):
        return token.replace(",", "")
    return token.replace(",", ".").rstrip(".")


def numbers(text: str) -> set[str]:
    """Every number in the text, written in digits or words (en, uk, ru), and ``%``."""
    folded = fold(text).replace("’", "'").replace("ʼ", "'")
    found = {f"n:{_digits(t)}" for t in _DIGITS_RE.findall(folded)}
    for word in _WORD_RE.findall(folded):
        value = _lookup(word, _NUMBERS)
        if value is not None:
            found.add(f"n:{value}")
    if _PERCENT_RE.search(folded):
        found.add("%")
    return found


def dates(text: str) -> set[str]:
    """Months, weekdays, seasons, quarters, days and relative dates ("next week")."""
    folded = fold(text).replace("’", "'").replace("ʼ", "'")
    found: set[str] = set()
    for word in _WORD_RE.findall(folded):
        for kind, table in (("month", _MONTHS), ("day", _WEEKDAYS), ("when", _SEASONS)):
            value = _lookup(word, table)
            if value is not None and word != "may":  # a verb far more often than a month
                found.add(f"{kind}:{value}")
    if re.search(r"\b(?:in|of|since|until|by|from)\s+may\b|\bmay\s+\d", folded):
        found.add("month:5")
    for match in _RELATIVE_RE.finditer(folded):
        unit = match.group(1)
        key = next((v for k, v in _RELATIVE_UNIT.items() if unit.startswith(k)), unit)
        found.add(f"next:{key}")
    found.update(f"q:{m.group(0)[-1]}" for m in _QUARTER_RE.finditer(folded))
    return found


_VOWELS_RE = re.compile(r"[aeiouy]+")


def latin(word: str) -> str:
    """A word folded and transliterated to Latin letters, runs of vowels as one ``*``, for
    comparing names across scripts and inflections ("Львові", "Lviv": ``lv*v*``, ``lv*v``)."""
    return _VOWELS_RE.sub("*", fold(word).translate(_TRANSLIT))


def names(sentence: str) -> set[str]:
    """Capitalised words inside the sentence (not its first word), in Latin letters."""
    found: set[str] = set()
    tokens = list(re.finditer(r"\S+", sentence))
    for position, match in enumerate(tokens):
        if position == 0 or tokens[position - 1].group(0)[-1:] in '.!?:;"«“—-':
            continue
        for word in _WORD_RE.findall(match.group(0)):
            if word[:1].isupper() and len(word) > 1 and fold(word) not in _NOT_NAMES:
                found.add(latin(word))
    return found


def name_known(name: str, known_words: set[str]) -> bool:
    """Whether a name occurs among known words (Latin letters), inflections aside."""
    root = name[: max(4, min(len(name) - 1, 5))]
    return any(
        w.startswith(root) or (len(w) >= 4 and name.startswith(w[: max(4, len(w) - 2)]))
        for w in known_words
    )


def known_words(text: str) -> set[str]:
    """Every word of a text, in Latin letters (see :func:`name_known`)."""
    return {latin(w) for w in _WORD_RE.findall(text) if len(w) > 1}
