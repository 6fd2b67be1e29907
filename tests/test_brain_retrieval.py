"""Retrieval calibration: paraphrased questions find the right statements, off-topic ones
find nothing, in English and Ukrainian, and across languages through the lexicon.

The thresholds in ``brain/retrieval.py`` were chosen on these sets; a change to the
stemmer, stop words, lexicon or scoring that breaks them shows up here.
"""

from __future__ import annotations

import pytest

from townhall.server.clone.brain.lexicon import CONCEPTS, build_lexicon, concepts_in
from townhall.server.clone.brain.matching import Keyword, KeywordSet, parse_table
from townhall.server.clone.brain.retrieval import Retriever
from townhall.server.clone.brain.text import stem, words
from townhall.server.clone.persona import Persona, load_persona, sample_persona_path


@pytest.fixture(scope="module")
def persona() -> Persona:
    return load_persona(sample_persona_path())


@pytest.fixture(scope="module")
def retriever(persona: Persona) -> Retriever:
    return Retriever.from_persona(persona)


# (language, question, acceptable best statement ids)
ON_TOPIC = [
    ("en", "Are we going back to the office full time?", {"S10", "S11"}),
    ("en", "Do I have to come into the office a certain number of days?", {"S11"}),
    ("en", "What's our overall strategy this year?", {"S01", "S02"}),
    ("en", "What are the company priorities this year?", {"S01", "S02", "S04"}),
    ("en", "When is the mobile app for warehouses coming?", {"S06"}),
    ("en", "When will the demand planning module launch?", {"S05"}),
    ("en", "Are we still hiring engineers?", {"S15"}),
    ("en", "How can I refer a friend for a job?", {"S16"}),
    ("en", "What should I do about phishing emails?", {"S27"}),
    ("en", "Can I use ChatGPT for my work?", {"S30"}),
    ("en", "Will AI replace us?", {"S32"}),
    ("en", "How did the first quarter go?", {"S38"}),
    ("en", "How did Q2 go?", {"S39"}),
    ("en", "How much runway do we have?", {"S40"}),
    ("en", "What are our company values?", {"S19"}),
    ("en", "What happens when someone makes a mistake that breaks production?", {"S21"}),
    ("en", "What's happening to the old reporting engine?", {"S08"}),
    ("en", "Why do we have so many meetings?", {"S13"}),
    ("en", "How does this AI clone work?", {"S33"}),
    ("en", "Is there a budget for courses and conferences?", {"S25"}),
    ("en", "What's our uptime target?", {"S41"}),
    ("en", "Why are customers leaving us?", {"S36"}),
    ("en", "Which hours should we overlap across time zones?", {"S12"}),
    ("en", "Can I move to a different team internally?", {"S18"}),
    ("en", "Do engineers have to do customer support?", {"S35"}),
    ("en", "Will there be a company offsite this year?", {"S24"}),
    ("en", "How do we decide what goes on the roadmap?", {"S09"}),
    ("en", "I keep getting paged at night when on call, is that normal?", {"S42"}),
    # Written after calibration, not tuned on:
    ("en", "Is remote work here to stay?", {"S10"}),
    ("en", "What's the plan for ERP integrations?", {"S07"}),
    ("en", "Are we switching to passkeys?", {"S28"}),
    ("en", "What do customers say about our support team?", {"S37", "S35"}),
    ("en", "How do we compete with bigger competitors?", {"S03"}),
    ("en", "What happens to candidates after an interview?", {"S17"}),
    ("en", "Can I put customer data into an AI tool?", {"S30", "S29"}),
    ("uk", "Чи будемо ми працювати віддалено й надалі?", {"U01"}),
    ("uk", "Чи треба ходити в офіс у Львові?", {"U02"}),
    ("uk", "Чи наймає компанія нових людей цього року?", {"U03"}),
    ("uk", "Що робити, якщо прийшов підозрілий лист?", {"U04"}),
    ("uk", "Чи можна користуватися ChatGPT на роботі?", {"U05"}),
    ("uk", "Яка наша стратегія на цей рік?", {"U06"}),
    ("uk", "Які цінності нашої компанії?", {"U07"}),
    ("uk", "Коли запуск модуля планування попиту?", {"U08"}),
    ("uk", "Як пройшов перший квартал?", {"U09"}),
    ("uk", "Як працює цей клон?", {"U10"}),
    ("uk", "Чи є бюджет на навчання?", {"U12"}),
    # Written after calibration, not tuned on:
    ("uk", "Чи можна розповідати про погані новини?", {"U11"}),
    ("uk", "Які пріоритети компанії цього року?", {"U06"}),
]

# Ukrainian questions on which only English material exists.
CROSS_LANGUAGE = [
    ("uk", "Коли вийде мобільний застосунок?", {"S06"}),
    ("uk", "Які години перетину між часовими поясами?", {"S12"}),
    ("uk", "Мене часто будять вночі під час чергування, це нормально?", {"S42"}),
    ("uk", "Чи переходимо ми на інтеграції з ERP?", {"S07"}),
]

OFF_TOPIC = [
    ("en", "What's your favourite pizza topping?"),
    ("en", "Who won the football match last night?"),
    ("en", "Can you recommend a good book?"),
    ("en", "What's the weather like in Lisbon?"),
    ("en", "How do I fix my printer?"),
    ("en", "Tell me a joke"),
    ("en", "What's the capital of Australia?"),
    ("en", "Do you like cats or dogs?"),
    ("en", "What music do you listen to?"),
    ("en", "Where did you grow up?"),
    ("en", "Do you have any pets at home?"),
    ("en", "What books are you reading?"),
    ("en", "What did you have for breakfast?"),
    ("en", "What's the release date of the next Star Wars movie?"),
    ("en", "Which football team do you support?"),
    ("en", "Is the coffee machine on the third floor fixed yet?"),
    ("en", "What do you think about the new iPhone?"),
    ("uk", "Який твій улюблений фільм?"),
    ("uk", "Яка погода в Києві?"),
    ("uk", "Хто переміг у вчорашньому матчі?"),
    ("uk", "Порадь гарну книжку"),
    ("uk", "Яку музику ви слухаєте?"),
    ("uk", "Скільки вам років?"),
]


@pytest.mark.parametrize(("lang", "question", "expected"), ON_TOPIC)
def test_on_topic_finds_the_statement(
    retriever: Retriever, lang: str, question: str, expected: set[str]
) -> None:
    found = retriever.find(question, lang)
    assert found.hits, f"nothing fits {question!r}: {retriever.search(question, lang)[:3]}"
    assert not found.cross_language
    assert found.hits[0].statement.id in expected, found.ids
    assert found.hits[0].confidence >= retriever.threshold


@pytest.mark.parametrize(("lang", "question", "expected"), CROSS_LANGUAGE)
def test_cross_language_through_concepts(
    retriever: Retriever, lang: str, question: str, expected: set[str]
) -> None:
    found = retriever.find(question, lang)
    assert found.cross_language and found.language == "en"
    assert found.hits[0].statement.id in expected, found.ids


@pytest.mark.parametrize(("lang", "question"), OFF_TOPIC)
def test_off_topic_finds_nothing(retriever: Retriever, lang: str, question: str) -> None:
    found = retriever.find(question, lang)
    assert not found.hits, [(h.statement.id, round(h.confidence, 2)) for h in found.hits]


def test_accuracy_summary(retriever: Retriever) -> None:
    """Not per question but overall: top-1 on topic, and no false positives off topic."""
    right = sum(
        1
        for lang, q, expected in ON_TOPIC + CROSS_LANGUAGE
        if (hits := retriever.find(q, lang).hits) and hits[0].statement.id in expected
    )
    false_pos = sum(1 for lang, q in OFF_TOPIC if retriever.find(q, lang).hits)
    assert right == len(ON_TOPIC) + len(CROSS_LANGUAGE)
    assert false_pos == 0


def test_unknown_language_index_is_empty(retriever: Retriever) -> None:
    assert retriever.search("Was ist die Strategie?", "de") == []
    assert not retriever.find("Was ist die Strategie?", "de").hits


def test_threshold_is_what_decides(persona: Persona) -> None:
    lax = Retriever.from_persona(persona, threshold=0.0, cross_threshold=0.0)
    strict = Retriever.from_persona(persona, threshold=1.01, cross_threshold=1.01)
    question = "Are we still hiring engineers?"
    assert lax.find(question, "en").hits
    assert not strict.find(question, "en").hits


def test_stemming_maps_inflections_together() -> None:
    assert stem("hiring") == stem("hired") == stem("hire")
    assert stem("meetings") == stem("meeting")
    assert stem("policies") == stem("policy")
    assert stem("зарплата") == stem("зарплату") == stem("зарплатою")
    assert stem("роботою") == stem("робота") == stem("роботі")
    assert stem("наймаємо") == stem("наймає") == stem("найм")
    assert stem("звільнення") == stem("звільнень")


def test_ukrainian_verb_and_abstract_noun_forms_share_a_stem() -> None:
    """Past tense, gerunds, imperatives, the synthetic future and the reflexive third
    person of a statement's verb ("наймаємо", "зустрічатися") meet a question's form."""
    assert stem("наймав") == stem("наймаючи") == stem("наймайте") == stem("наймаємо")
    assert stem("працюватимемо") == stem("працюємо") == stem("працювати")
    assert stem("зустрічається") == stem("зустрічатися") == stem("зустрічаєш")
    assert stem("зупиніть") == stem("зупинитися")
    assert stem("надійність") == stem("надійності") == stem("надійний")
    assert stem("майстерність") == stem("майстерністю") == stem("майстерності")


def test_keyword_syntax() -> None:
    seq = words("Will they shut the Lviv office, or close offices elsewhere?")
    assert Keyword.parse("shut * lviv office*").find(seq) == 2
    assert Keyword.parse("lviv + clos*").find(seq) >= 0
    assert Keyword.parse("lviv + open*").find(seq) == -1
    assert Keyword.parse("offic*").find(seq, 6) == 8
    with pytest.raises(ValueError, match="nothing to match"):
        Keyword.parse(" * ")
    ks = KeywordSet([("a", ["office*"]), ("b", ["nothing"])])
    assert ks.matches(seq) == [("a", "office*")]
    assert ks.spans(seq) == [("a", 5, 6), ("a", 8, 9)]


def test_concept_table_parses() -> None:
    assert parse_table("a: x, y\n   z\nb: w\na: v") == {"a": ("x", "y", "z", "v"), "b": ("w",)}
    with pytest.raises(ValueError):
        parse_table("   orphan")
    assert len(CONCEPTS) > 30
    assert all(kws for kws in CONCEPTS.values())


def test_a_much_better_fit_in_another_language_is_said_instead(retriever: Retriever) -> None:
    """A weak Ukrainian fit on one shared concept ("нові функції" to the new module) loses
    to the English statement that covers the whole question (connectors before features)."""
    found = retriever.find("Чому конектори до ERP важливіші за нові функції?", "uk")
    assert found.cross_language and found.ids[0] == "S07", found.ids


def test_a_good_own_language_fit_is_kept(retriever: Retriever) -> None:
    found = retriever.find("Скільки клієнтів ми підписали в першому кварталі?", "uk")
    assert not found.cross_language and found.ids[0] == "U09", found.ids


def test_ukrainian_filler_words_are_stop_words_like_their_english_ones(
    retriever: Retriever,
) -> None:
    """ "нові" is "new" (an English stop word): alone it once fitted the statement on the new
    module, an unrelated statement under "approved"; "скільки", "маємо", "наступний" made
    answerable questions look mostly about something else."""
    people = retriever.find("Чи будуть у нас нові люди цього року?", "uk")
    assert "U08" not in people.ids, people.ids
    offsite = retriever.find("Де буде наступний офсайт?", "uk")
    assert offsite.ids[:1] == ("S24",), offsite.ids
    days = retriever.find("Скільки днів на навчання ми маємо щороку?", "uk")
    assert days.ids[:1] == ("U12",), days.ids


def test_a_hyphenated_question_word_also_matches_by_its_parts(retriever: Retriever) -> None:
    (word,) = retriever.analyse("ШІ-клон").words
    assert word.parts == ("ші", "клон") and {"#ai", "#clone"} <= word.concepts
    found = retriever.find("Чи відповідає ШІ-клон лише на основі затверджених заяв?", "uk")
    assert found.ids[0] == "U10" and found.hits[0].confidence >= 0.8, found.hits[:1]


def test_a_statements_compound_is_not_split(retriever: Retriever) -> None:
    """ "home-office" in a statement is no answer to any question about an office."""
    hits = retriever.search("Where can I buy an office chair for gaming?", "en")
    s14 = next(h for h in hits if h.statement.id == "S14")
    assert "offic" not in s14.matched


@pytest.mark.parametrize(
    ("question", "concept"),
    [
        ("Of course I read the handbook, but what happens to my pension?", "learning"),
        ("What do we offer for retirement savings?", "reporting"),
        ("Чи захищене моє приватне життя від камер в офісі?", "privacy"),
        ("Can I transfer money to a colleague who is short this month?", "internal-mobility"),
    ],
)
def test_a_common_word_does_not_pull_in_a_concept_it_only_resembles(
    question: str, concept: str
) -> None:
    """A concept's prefix must not catch an everyday word or a sensitive one ("of course",
    "retirement", one's private life, moving money): the concept would tie the question to
    a statement about something else (online courses, the reporting engine's retirement,
    customer data, moving teams)."""
    assert concept not in concepts_in(build_lexicon(), words(question))


@pytest.mark.parametrize(
    ("question", "concept"),
    [
        ("Is there an online course we can take on Rust?", "learning"),
        ("When is the old reporting engine retired?", "reporting"),
        ("Як ми захищаємо приватні дані клієнтів?", "privacy"),
        ("Can I ask for an internal transfer to the mobile team?", "internal-mobility"),
    ],
)
def test_the_narrowed_concepts_still_catch_their_subject(question: str, concept: str) -> None:
    assert concept in concepts_in(build_lexicon(), words(question))
