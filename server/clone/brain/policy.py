"""The escalation policy: what the clone must never answer, and what it must never say.

It runs twice. Before answering, on the question: prompt injection, requests for
commitments and sensitive topics escalate without answering (and without calling a
model). After generation, on every sentence a model produced, before it is spoken:
sensitive topics, promises and guarantees, money or percentages the approved material
does not contain, and talk about its own instructions cut the answer short.

Matching is on keywords and patterns: predictable, fast (well under a millisecond per
question) and impossible to argue with, but blind to paraphrase. So it is only the floor:
the judge is the intent classifier (:mod:`.intent`), and keywords with a harmless second
meaning ("the health of our codebase", "a fire alarm test", "a good deal on tickets",
"letting go of perfectionism", "звільнити місце") are left to it. Questions are also checked in
de-obfuscated variants (letters spaced out or dotted, digits for letters, look-alike
letters of the other alphabet, base64) so cheap tricks do not slip through. Keywords of
every language are applied to every question, whatever language it was detected as.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass

from townhall.server.clone.brain.matching import KeywordSet, parse_table
from townhall.server.clone.brain.text import normalise, words
from townhall.server.clone.persona import Persona, SensitiveTopic

# Reason codes carried by escalations (see Escalation.reason).
INJECTION = "injection"
COMMITMENT_REQUEST = "commitment_request"
SENSITIVE_TOPIC = "sensitive_topic"  # as "sensitive_topic:<topic>"
NO_MATERIAL = "no_material"
LANGUAGE_UNSUPPORTED = "language_unsupported"
GENERATED_VIOLATION = "generated_violation"
BACKEND_ERROR = "backend_error"

#: Topics that always escalate, whatever the persona says: ``topic: keyword, ...`` lines
#: (English and Ukrainian lines per topic), keyword syntax of :mod:`.matching`.
BUILTIN_TOPIC_TABLE = """
pay: our pay, my pay, your pay, their pay, pay cut*, pay review*, payday, pay day, get paid,
     paid more, paid less, paid enough, paid fairly, paycheck*, payslip*, payroll, underpaid,
     overpaid, salar*, wage*, compensation, comp band*, bonus*, a raise, pay raise*, pay rise*,
     payrise*, raises, salary increase*, pay increase*, equity, stock option*, share option*,
     options grant*, rsu, rsus, esop, vesting, commission*, pension*, 401k, cost of living,
     pay gap, pay band*, my income, overtime pay, how much do we earn, how much do we make,
     how much do i earn, how much + earn*
pay: скільки + заробля*, зарплат*, заробітн*, зп, оклад*, бонус*, премі*, преміальн*,
     компенсац*, опціон*,
     акці* компанії, пенсі*, надбавк*, індексац*, виплат*, підвищенн* зарплат*,
     скільки ми заробляємо, скільки я заробляю
layoffs: layoff*, lay off*, laid off, lay people off, laying off, lay-off*, redundanc*,
         redundant, fired, fire people, fire staff, fire anyone, fire employees, firing people,
         firing staff, firing anyone, let people go, letting people go, let staff go,
         job cut*, job loss*, cut jobs, cutting jobs, cut staff, cutting staff, headcount cut*,
         headcount reduction*, reduce headcount, downsiz*, rif, rifs, reduction in force,
         severance, dismissal*, lose my job, lose our jobs, lose their jobs, losing my job,
         losing our jobs, losing jobs, job security, jobs safe, job safe, jobs secure,
         hiring freeze, terminat* employ*, terminat* staff, terminat* people
layoffs: звільнен*, звільня*, звільнять, звільнили, звільнить, звільнив, звільнила,
         звільнень, скорочен*, скорот* штат*, скорот* людей, скорот* працівник*, скорот* команд*,
         скорочуват* штат*, втрат* робот*, втрачу роботу, втратимо роботу, вихідн* допомог*,
         лейоф*, замороженн* найм*
legal: lawsuit*, sue, sued, suing, legal, legally, lawyer*, attorney*, court, courts, litigat*,
       regulator*, investigation*, fined, fines, settlement*, discriminat*, harass*,
       whistleblow*, nda, ndas, non-compete, patent*, trademark*, subpoena*,
       compliance violation*, breach of contract
legal: суд, суді, суду, судом, судов*, позов*, юрист*, юридичн*, адвокат*, законн*, незаконн*,
       розслідуванн*, штраф*, дискримінац*, домаганн*, цькуванн*, патент*, регулятор*,
       комплаєнс*
deals: acquisition*, acquire us, acquired by, acquiring a, acquiring another, be acquired,
       being acquired, get acquired, merger*, merge with, merging with, buyout*, buy out,
       takeover*, deal talks, sell the company,
       selling the company, being sold, be sold, buy us, buying us, bought by, term sheet*,
       due diligence, valuation*, investment round*, funding round*, private equity
deals: угод*, злитт*, поглинанн*, придбанн* компан*, придба* нас, придбають нас,
       придба* компанію, купівл* компан*, продаж компан*, продати компанію, продають компанію,
       продадуть, купують нас, купить нас, куплять нас, оцінк* компан*, раунд* інвестиц*,
       інвестиційн* раунд*
health: health + dana*, dana* + health, your health, her health, his health, health issue*,
        health problem*, healthcare, health care, medical, sickness, illness*, off sick,
        disease*, diagnos*, cancer, covid*, pandemic, therap*,
        disabilit*, disabled, pregnan*, maternity, paternity, parental leave, sick leave,
        doctor*, hospital*, surgery, injur*, health insurance
health: здоров* + дан*, ваше здоров*, її здоров*, стан здоров*, проблем* + здоров*,
        медичн*, медицин*, лікар*, лікуванн*, хвор*, захвор*, лікарнян*, діагноз*,
        вагітн*, декрет*, інвалідн*, психотерап*, ковід*, страхуванн*,
        страховк*
personal: personal life, personal matter*, personal question*, private life, your family,
          your kids, your children, your husband, your wife, your partner, divorc*, dating,
          affair*, religio*, political view*, politics, who did you vote, your age,
          how old are you, where do you live, your address, your phone number, your favourite,
          your favorite, rumour*, rumor*, gossip, my performance, my review, my promotion,
          promote me, my contract, my visa, my situation, my case, my team lead
personal: особист* житт*, особист* питанн*, особист* справ*, особист* обставин*,
          приватн* житт*, ваша родина, вашої родини, ваша сім'я, вашої сім'ї, ваші діти,
          ваших дітей, ваш чоловік, ваша дружина, розлучен*, релігі*, політичн* погляд*,
          за кого голосува*, скільки вам років, скільки тобі років, де ви живете,
          ваш улюблений, ваша улюблена, ваше улюблене, твій улюблений, твоя улюблена, чутк*,
          плітк*, моя ситуація, мою ситуацію, мій контракт, моє підвищення, мене підвищать
"""
BUILTIN_TOPICS: dict[str, tuple[str, ...]] = parse_table(BUILTIN_TOPIC_TABLE)

#: Words with a harmless second meaning: not a reason to escalate a question (the intent
#: classifier judges those), but in a sentence a model wrote for the leader, cutting one
#: too many costs only an escalation.
GENERATED_ONLY_TABLE = """
layoffs: fire, firing, let go, letting go, dismiss*, звільн*
deals: deal, deals
health: health, sick, ill, medicine, insurance, здоров*
"""
GENERATED_ONLY: dict[str, tuple[str, ...]] = parse_table(GENERATED_ONLY_TABLE)

#: Words that are sensitive in one meaning and everyday workplace talk in another ("my
#: burnout" is health, "burnout from on-call" is how teams work; "психологічна безпека"
#: is culture). They still escalate on their own, unless the intent classifier is
#: confident the question is harmless (:meth:`Policy.check_question` marks them ``soft``
#: and the gate asks the judge); in generated sentences they always cut.
SOFT_TOPIC_TABLE = """
health: burnout, burned out, burnt out, burning out, вигоранн*, вигора*, психолог*
"""
SOFT_TOPICS: dict[str, tuple[str, ...]] = parse_table(SOFT_TOPIC_TABLE)

_INJECTION_PATTERNS = [
    # English
    r"\b(ignore|disregard|forget|override|overrule|bypass|skip|drop|abandon|set aside)\b"
    r"[^.?!]{0,40}\b(instructions?|rules?|prompts?|guidelines|guardrails|polic(y|ies)|"
    r"restrictions?|constraints?|directions|programming|training|above|previous|prior|earlier)\b",
    r"\b(you are|you're|u r) (now|no longer|actually|free|not (an? )?(ai|clone|bot))\b",
    r"\bfrom now on,? (you|answer|respond|reply|act|behave|speak|say|only)\b",
    r"\b(act|behave|respond|answer|speak|talk|write) (as|like) (if|though|an?|the|my|our)\b",
    r"\bpretend(ing)?\b",
    r"\bimagine (you|that you|you're|being)\b",
    r"\brole[- ]?play",
    r"\bplay (the |a )?(role|part|game|character)\b",
    r"\bsimulat(e|ion|ing)\b",
    r"\bhypothetical(ly)?\b",
    r"\b(system|developer|hidden|initial|original|secret) (prompt|message|instructions?)\b",
    r"\bprompt injection\b",
    r"\bjail ?break",
    r"\b(dan|developer|god|debug|admin) mode\b",
    r"\bdo anything now\b",
    r"\bnew (instructions?|rules|task|persona|role|identity)\b",
    r"\b(reveal|show|print|repeat|output|tell me|list) (me )?(your|the) "
    r"(instructions|prompt|rules|system|guidelines)\b",
    r"\brepeat after me\b",
    r"\bsay (exactly|the following|these words|after me|verbatim)\b",
    r"\b(respond|reply|answer) (only )?(with|in) (yes|no|one word|the word|json|code)\b",
    r"\bstart your (answer|reply|response) with\b",
    r"<\|?\s*(im_start|im_end|system|endoftext|assistant|user)\s*\|?>",
    r"\[/?(inst|system|sys)\]",
    r"(^|\n|\s)(system|assistant|developer)\s*:",
    r"#{3,}",
    r"`{3}",
    r"\b(do not|don't|dont|never|without) (escalat\w*|pass (it|this) on|forward\w*)\b",
    r"\bno need to escalate\b",
    r"\boff the record\b",
    r"\b(just )?between (you and me|us)\b",
    r"\b(unfiltered|uncensored|no restrictions|without restrictions|without (any )?filters?)\b",
    r"\bi am (the|your) (developer|admin|administrator|operator|creator|programmer)\b",
    r"\b(this is|i am|i'm) dana\b",
    r"\b(i order|i command|you must answer|you have to answer|answer directly)\b",
    # Ukrainian
    r"\b(ігноруй\w*|ігнорувати|забудь\w*|знехтуй\w*|відкинь\w*|обійди\w*|не зважай\w*)\b"
    r"[^.?!]{0,40}(інструкці|правил|вказівк|промпт|обмеженн|попередн|вище)",
    r"\b(відтепер|віднині),? (ти|ви|відповідай\w*|кажи|говори)\b",
    r"\b(ти|ви) (тепер|відтепер) (—|-|є|не|справжн\w*|вільн\w*|без обмежень|генеральн\w*|дана)",
    r"\b(ти|ви) більше не (клон|бот|ші|обмежен\w*|зобов)",
    r"\b(уяви|уявіть|уявімо|уявляй)\b",
    r"\b(прикинься|прикиньтеся|вдавай\w*|вдай\w*|удай\w*|удавай\w*)\b",
    r"\bрольов\w* гр\w*",
    r"\b(зіграй\w*|грай\w* роль)\b",
    r"\bсистемн\w* (промпт|підказк|інструкці|повідомленн)\w*",
    r"\bджейлбрейк\w*",
    r"\bрежим\w* розробника\b",
    r"\bнові (інструкції|правила)\b",
    r"\bповтор\w* за мною\b",
    r"\bскаж\w* (дослівно|точно таке|таке)\b",
    r"\bвідповідай\w* (лише|тільки) (так|ні|одним словом)\b",
    r"\bне (ескалюй\w*|передавай\w*|пересилай\w*)\b",
    r"\bміж нами\b",
    r"\bнеофіційно\b",
    r"\bбез (обмежень|цензури|фільтрів)\b",
    r"\bгіпотетично\b",
    r"\bя (твій|ваш) (розробник|адміністратор|творець)\b",
    r"\b(це|я) дана\b",
]

_COMMITMENT_REQUEST_PATTERNS = [
    r"\b(promise|promised|promises|guarantee\w*|pledge|swear|vow|commit to)\b",
    r"\b(assure|reassure) (us|me|everyone|people)\b",
    r"\b(your word|give us your word|on the record|in writing|officially confirm|"
    r"confirm officially)\b",
    r"\b(пообіця\w*|обіця\w*|обіцянк\w*|гаранту\w*|гарантій\w*|поклян\w*|присягн\w*)\b",
    r"\b(дай\w* слово|запевн\w*|офіційно підтверд\w*)\b",
]

_GENERATED_COMMITMENT_PATTERNS = [
    r"\b(i|we) (promise|guarantee|pledge|swear|vow|commit)\b",
    r"\b(guarantee[sd]?|promise[sd]?)\b",
    r"\byou have my word\b",
    r"\brest assured\b",
    r"\bi can (confirm|assure|tell you for certain)\b",
    r"\bno(body| one) (will|is going to) (lose|be (fired|laid off|let go))",
    r"\b(jobs?|positions?|roles?) (is|are|will be) (safe|secure)\b",
    r"\b(обіця\w*|гаранту\w*|запевня\w*|даю слово|даю вам слово)\b",
]

_GENERATED_META_PATTERNS = [
    r"\b(system prompt|my instructions|my prompt|my rules say|i was instructed|i am instructed)\b",
    r"\b(as an ai language model|language model)\b",
    r"\b(системн\w* промпт|мої інструкції)\b",
]

# Amounts of money or percentages in generated text must appear in the approved sources.
_MONEY_RE = re.compile(
    r"(?:[$€£₴]\s?\d[\d,.\s]*\d|[$€£₴]\s?\d|\d[\d,.]*\s?(?:%|percent\b|per cent\b|k\b|"
    r"thousand\b|million\b|billion\b|dollars?\b|euros?\b|pounds?\b|usd\b|eur\b|gbp\b|uah\b|"
    r"грн|гривень|гривні|гривня|відсот\w*|тисяч\w*|мільйон\w*|мільярд\w*|євро\b|долар\w*))",
    re.IGNORECASE,
)

_HOMOGLYPHS_TO_LATIN = str.maketrans("аеорсхуікмтнвї", "aeopcxyikmthbi")
_HOMOGLYPHS_TO_CYRILLIC = str.maketrans("aeopcxyikmth", "аеорсхуікмтн")
_LEET = str.maketrans("013457@$", "oieastas")
_SPACED_RE = re.compile(r"(?<!\w)(?:\w[\s.\-_*·]){2,}\w(?!\w)")
_INNER_PUNCT_RE = re.compile(r"(?<=\w)[.\-_*·'](?=\w)")
_BASE64_RE = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why something must escalate: a reason code and a human-readable detail."""

    reason: str
    detail: str = ""
    #: Only a word of two meanings (:data:`SOFT_TOPICS`) matched: the judge may overrule.
    soft: bool = False


def _compile(patterns: Iterable[str]) -> list[re.Pattern[str]]:
    return [re.compile(p, re.IGNORECASE | re.UNICODE) for p in patterns]


class Policy:
    """Escalation rules: built-in sensitive topics plus the persona's own."""

    def __init__(self, extra_topics: Iterable[SensitiveTopic] = ()) -> None:
        self.topics = KeywordSet()
        for topic, keywords in BUILTIN_TOPICS.items():
            self.topics.add(topic, keywords)
        for extra in extra_topics:
            self.topics.add(extra.id, (k for kws in extra.keywords.values() for k in kws))
        self.generated_topics = KeywordSet()
        for topic, keywords in BUILTIN_TOPICS.items():
            extra_words = (*GENERATED_ONLY.get(topic, ()), *SOFT_TOPICS.get(topic, ()))
            self.generated_topics.add(topic, (*keywords, *extra_words))
        self.soft_topics = KeywordSet(SOFT_TOPICS.items())
        for extra in extra_topics:
            self.generated_topics.add(extra.id, (k for kws in extra.keywords.values() for k in kws))
        self._injection = _compile(_INJECTION_PATTERNS)
        self._commitment_request = _compile(_COMMITMENT_REQUEST_PATTERNS)
        self._generated_commitment = _compile(_GENERATED_COMMITMENT_PATTERNS)
        self._generated_meta = _compile(_GENERATED_META_PATTERNS)

    @classmethod
    def for_persona(cls, persona: Persona) -> Policy:
        return cls(persona.sensitive_topics)

    @property
    def topic_names(self) -> tuple[str, ...]:
        return self.topics.names

    def check_question(self, question: str) -> Verdict | None:
        """Escalate before answering: injection, a request for commitments, a sensitive topic."""
        variants, encoded = _variants(question)
        if encoded:
            return Verdict(INJECTION, "encoded text in the question")
        for text in variants:
            if (pattern := _search(self._injection, text)) is not None:
                return Verdict(INJECTION, f"matched {pattern!r}")
        for text in variants:
            if (pattern := _search(self._commitment_request, text)) is not None:
                return Verdict(COMMITMENT_REQUEST, f"matched {pattern!r}")
        for text in variants:
            hit = self.topics.first(words(text))
            if hit is not None:
                return Verdict(f"{SENSITIVE_TOPIC}:{hit[0]}", f"keyword {hit[1]!r}")
        for text in variants:
            hit = self.soft_topics.first(words(text))
            if hit is not None:
                return Verdict(f"{SENSITIVE_TOPIC}:{hit[0]}", f"keyword {hit[1]!r}", soft=True)
        return None

    def check_generated(self, sentence: str, sources_text: str = "") -> Verdict | None:
        """Stop a generated answer before this sentence is spoken, or ``None`` if it may be."""
        text = normalise(sentence)
        hit = self.generated_topics.first(words(text))
        if hit is not None:
            return Verdict(GENERATED_VIOLATION, f"{SENSITIVE_TOPIC}:{hit[0]} ({hit[1]!r})")
        if (pattern := _search(self._generated_commitment, text)) is not None:
            return Verdict(GENERATED_VIOLATION, f"commitment ({pattern!r})")
        if (pattern := _search(self._generated_meta, text)) is not None:
            return Verdict(GENERATED_VIOLATION, f"talks about its instructions ({pattern!r})")
        allowed = _numbers(sources_text)
        for match in _MONEY_RE.finditer(text):
            for number in _numbers(match.group(0)):
                if number not in allowed:
                    return Verdict(
                        GENERATED_VIOLATION, f"amount {match.group(0).strip()!r} not in sources"
                    )
        return None


def _search(patterns: Iterable[re.Pattern[str]], text: str) -> str | None:
    for pattern in patterns:
        match = pattern.search(text)
        if match:
            return match.group(0).strip()
    return None


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "").rstrip(".") for n in re.findall(r"\d[\d,.]*", text)}


def _mixed_script_fix(text: str) -> str:
    """Words mixing Latin and Cyrillic letters rewritten in their majority script."""

    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        cyr = sum(1 for c in word if "\u0400" <= c <= "\u04ff")
        lat = sum(1 for c in word if "a" <= c <= "z")
        if not cyr or not lat:
            return word
        table = _HOMOGLYPHS_TO_LATIN if lat >= cyr else _HOMOGLYPHS_TO_CYRILLIC
        return word.translate(table)

    return re.sub(r"[^\W_]+", fix, text)


def _variants(question: str) -> tuple[list[str], bool]:
    """The question normalised plus de-obfuscated variants; and whether it hid base64 text."""
    base = normalise(question)
    variants = [base]
    for transform in (
        _mixed_script_fix,
        lambda t: t.translate(_LEET),
        lambda t: _INNER_PUNCT_RE.sub("", t),
        lambda t: _SPACED_RE.sub(lambda m: re.sub(r"[\s.\-_*·]", "", m.group(0)), t),
    ):
        variant = transform(base)
        if variant not in variants:
            variants.append(variant)
    combined = _INNER_PUNCT_RE.sub("", _mixed_script_fix(base)).translate(_LEET)
    if combined not in variants:
        variants.append(combined)
    encoded = False
    for token in _BASE64_RE.findall(question):
        decoded = _decode_base64(token)
        if decoded:
            encoded = True
            variants.append(normalise(decoded))
    return variants, encoded


def _decode_base64(token: str) -> str | None:
    """Text hidden as base64, if the token decodes to mostly printable UTF-8."""
    if token.isalpha() and (token.islower() or token.isupper()):
        return None  # a long ordinary word, not an encoding
    padded = token + "=" * (-len(token) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    printable = sum(1 for c in text if c.isprintable() or c.isspace())
    return text if text and printable / len(text) > 0.9 and any(c.isalpha() for c in text) else None
