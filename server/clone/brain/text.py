"""Text normalisation, tokenising and light stemming for English and Ukrainian.

Retrieval and the policy both need words that match across inflections ("hiring",
"hired"; "зарплата", "зарплату"). A full morphological analyser would be overkill for a
few dozen statements, and Snowball has no Ukrainian stemmer, so both languages get a
small suffix stripper with the same shape. It only has to map a question's words and a
statement's words to the same stem, not to produce linguistically correct stems.
"""

from __future__ import annotations

import re

from townhall.server.core.textnorm import fold

_APOSTROPHES = str.maketrans({"’": "'", "ʼ": "'", "`": "'", "´": "'", "‘": "'"})
_WORD_RE = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")


def normalise(text: str) -> str:
    """The shared :func:`~townhall.server.core.textnorm.fold` (invisible characters
    removed, look-alikes and leetspeak undone, case-folded), one kind of apostrophe."""
    return fold(text).translate(_APOSTROPHES)


def words(text: str) -> list[str]:
    """Normalised words; apostrophes and hyphens inside a word keep it whole."""
    return _WORD_RE.findall(normalise(text))


def is_cyrillic(word: str) -> bool:
    return any("\u0400" <= c <= "\u04ff" for c in word)


# --- English ----------------------------------------------------------------------------

_EN_KEEP = {"news", "always", "its", "this", "is", "was", "has", "does", "us", "plus", "status"}


def stem_en(word: str) -> str:
    """Strip common English inflections: plurals, -ing, -ed, -ly, final -e."""
    w = word.replace("'", "")
    if w.endswith("s") and len(word) > 2 and word[-2:] == "'s":
        w = word[:-2]
    if len(w) <= 3 or w in _EN_KEEP:
        return w
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("sses"):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix in ("ing", "ed"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)]
            if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":
                w = w[:-1]
            break
    if w.endswith("ly") and len(w) > 5:
        w = w[:-2]
    if w.endswith("e") and len(w) > 3:
        w = w[:-1]
    if w.endswith("y") and len(w) > 3:
        w = w[:-1] + "i"
    return w


# --- Ukrainian --------------------------------------------------------------------------

# Inflectional endings (nouns, adjectives, verbs), longest first so one pass strips the
# whole ending. Derivational suffixes are left alone.
_UK_ENDINGS = sorted(
    {
        "ування",
        "ювання",
        "уватися",
        "увати",
        "ювати",
        "аємо",
        "яємо",
        "уємо",
        "юємо",
        "аєте",
        "уєте",
        "ають",
        "яють",
        "ують",
        "юють",
        "ими",
        "іми",
        "ами",
        "ями",
        "ого",
        "ому",
        "ові",
        "еві",
        "ати",
        "яти",
        "ити",
        "іти",
        "уть",
        "ють",
        "ать",
        "ять",
        "ить",
        "ете",
        "ите",
        "емо",
        "ємо",
        "имо",
        "ала",
        "ало",
        "али",
        "ила",
        "ило",
        "или",
        "ий",
        "ій",
        "ої",
        "ою",
        "ею",
        "єю",
        "их",
        "іх",
        "им",
        "ім",
        "ів",
        "ей",
        "ам",
        "ям",
        "ах",
        "ях",
        "ом",
        "ем",
        "ає",
        "ує",
        # abstract nouns in -ість, whose vowel changes in the other cases
        "ість",
        "істю",
        "ості",
        "остей",
        "остям",
        "остями",
        "остях",
        # verbs: past tense, gerunds, imperatives, second person (the future tense is
        # folded to the infinitive first, :data:`_UK_FUTURE`)
        "авши",
        "ивши",
        "аючи",
        "яючи",
        "уючи",
        "ючи",
        "учи",
        "ачи",
        "ячи",
        "аймо",
        "айте",
        "яймо",
        "яйте",
        "аєш",
        "яєш",
        "уєш",
        "юєш",
        "аєм",
        "ав",
        "ив",
        "ай",
        "аю",
        "яю",
        "іть",
        "імо",
        "иш",
        "еш",
        "а",
        "я",
        "о",
        "е",
        "є",
        "и",
        "і",
        "ї",
        "у",
        "ю",
        "ь",
        "й",
    },
    key=len,
    reverse=True,
)


#: The synthetic future ("працюватимемо": will work) is the infinitive plus an ending.
_UK_FUTURE = re.compile(r"(?<=ти)(?:му|меш|ме|мемо|мем|мете|муть)$")


def stem_uk(word: str) -> str:
    """Strip a Ukrainian reflexive particle and one inflectional ending; keep >= 3 letters.

    Its endings were checked against the word forms of simplemma's Ukrainian dictionary
    for the sample persona's words (a development aid, not a dependency): every form of a
    word should share the word's stem."""
    w = word.replace("'", "")
    if len(w) <= 3:
        return w
    for particle in ("ся", "сь"):
        if w.endswith(particle) and len(w) - 2 >= 4:
            w = w[:-2]
            break
    if len(w) > 7:
        w = _UK_FUTURE.sub("", w)
    if w.endswith("ть") and w[-3:-2] in ("а", "я", "є", "и", "і") and len(w) > 6:
        w = w[:-2]  # the reflexive third person: "зустрічається" -> "зустрічає"
    for ending in _UK_ENDINGS:
        if w.endswith(ending) and len(w) - len(ending) >= 3:
            w = w[: -len(ending)]
            break
    if w.endswith("нн"):
        w = w[:-1]
    return w


def stem(word: str) -> str:
    """Stem by script: Cyrillic words as Ukrainian, others as English."""
    return stem_uk(word) if is_cyrillic(word) else stem_en(word)


# --- stop words -------------------------------------------------------------------------

STOPWORDS: frozenset[str] = frozenset(
    """
    a about above after again against all also am an and any are aren't as at be because
    been before being below between both but by can can't could couldn't did didn't do does
    doesn't doing don't down during each few for from further get gets getting go going got
    had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself
    him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself just
    let's me might more most must mustn't my myself no nor not now of off on once only or
    other ought our ours ourselves out over own please same say she she'd she'll she's should
    shouldn't so some such tell than that that's the their theirs them themselves then there
    there's these they they'd they'll they're they've this those through to too under until
    up us very was wasn't we we'd we'll we're we've were weren't what what's when when's where
    where's which while who who's whom why why's will with won't would wouldn't you you'd
    you'll you're you've your yours yourself yourselves anything something everything thing
    things really think thoughts know want wondering wonder question curious share view
    current currently kind lot lots much many like yes ok okay
    right still ever even going gonna wanna maybe perhaps hi hello hey thanks thank dear
    actually does doing company company's everyone people anyone someone team teams
    good great best better favourite favorite nice cool back full time times come coming
    certain number way overall generally general exactly specific soon next last new need
    needs often normal usually look looks looking make makes making made different
    differently approach across
    а аби або адже але б би бо був була були було бути в вам вами вас ваш ваша ваше ваші
    весь від він вона вони воно все всі всіх втім ви вже де для до дуже є ж за зараз
    з із зі й його їй їх ї і чи коли котрий котра котрі куди ледве лише мене мені ми мій
    мною мого моя моє мої на над нам нами нас наш наша наше наші не нє ні ніж ну о оце
    по при про раз саме свій своя своє свої себе собі та так також там те тебе теж ти
    тим тих то тобто той тому ту тут у усі хто це цей ці ця цього цьому цю чого чому
    що щоб щодо як яка які який яке якщо буде будуть будемо скажіть розкажіть підкажіть
    поясніть можете можна можу хочу хочемо питання запитання думаєте думка дякую привіт
    доброго добрий день компанії компанія компанію всім усім люди людей треба потрібно
    ходити ходимо йти знову взагалі нині нарешті під час часто нормально зазвичай
    скільки мати маю маєш має маємо маєте мають мав мала мали можемо може можуть варто
    слід робити робимо робите роблять робиться зробити зробимо знати знаю знаєте знаємо
    думати думаю думаємо хотіти хотів хотіла хотілося ставитися ставимося ставитеся
    ставиться наступний наступна наступне наступні наступного наступної наступному
    наступним наступних наступну останній остання останнє останні останнього
    останньої останньому останнім останніх останню новий нова нове нові нового нової
    новому новим нових нову навіщо нащо цій
    """.split()
)


def content_words(text: str, extra_stopwords: frozenset[str] = frozenset()) -> list[str]:
    """Words minus stop words and one-letter tokens, in order."""
    return [
        w
        for w in words(text)
        if w not in STOPWORDS and w not in extra_stopwords and (len(w) > 1 or w.isdigit())
    ]
