"""A small bilingual lexicon of all-hands concepts: synonyms and an en <-> uk bridge.

Bag-of-words retrieval misses paraphrases ("work from home" vs "remote-first") and cannot
match a Ukrainian question to an English statement at all. Both statements and
questions are tagged with the concepts they mention, and the concept tags take part in
retrieval as extra terms. A statement's ``tags`` named like a concept count as that
concept. Keywords use the syntax of :mod:`.matching`.
"""

from __future__ import annotations

from collections.abc import Sequence

from .matching import KeywordSet

CONCEPTS: dict[str, tuple[str, ...]] = {
    "strategy": (
        "strategy", "strategic*", "priorit*", "focus*", "vision", "direction", "long-term",
        "big picture", "mid-market", "midmarket",
        "стратег*", "пріоритет*", "бачення", "напрям*", "зосередж*", "фокус*",
        "середнього бізнесу",
    ),
    "competition": (
        "competitor*", "competition", "competing", "rival*", "compete",
        "конкурент*", "конкуренц*",
    ),
    "roadmap": (
        "roadmap*", "road map", "launch*", "release*", "ship*", "feature*", "module*",
        "demand-planning", "demand planning", "beta", "product plan*", "what's next",
        "дорожн* карт*", "запуск*", "реліз*", "функці*", "модул*", "бета*", "планування попиту",
    ),
    "mobile": (
        "mobile", "app", "apps", "phone*", "smartphone*", "ios", "android",
        "мобільн*", "застосун*", "додат*", "телефон*", "смартфон*",
    ),
    "integrations": (
        "integrat*", "connector*", "erp*", "sap", "api", "apis",
        "інтеграц*", "конектор*",
    ),
    "reporting": (
        "report*", "dashboard*", "legacy", "retir*", "deprecat*", "sunset*",
        "звіт*", "дашборд*",
    ),
    "remote": (
        "remote*", "wfh", "work from home", "working from home", "from home", "hybrid",
        "anywhere", "distributed", "remote-first",
        "віддален*", "дистанційн*", "вдома", "з дому", "гібридн*",
    ),
    "office": (
        "office*", "in-office", "return to office", "rto", "attendance", "commut*",
        "desk*", "lviv", "офіс*", "львів*", "присутн*",
    ),
    "time-zones": (
        "time zone*", "timezone*", "time-zone*", "overlap*", "core hours", "working hours",
        "часов* пояс*", "годин*",
    ),
    "meetings": (
        "meeting*", "calls", "zoom", "async*", "asynchronous*", "written", "writing",
        "зустріч*", "нарад*", "мітинг*", "дзвінк*",
    ),
    "home-office": (
        "home-office", "home office", "equipment", "chair*", "monitor*", "laptop*",
        "setup", "стіл*", "крісл*", "обладнан*", "ноутбук*",
    ),
    "hiring": (
        "hir*", "recruit*", "headcount", "job opening*", "vacanc*", "open role*",
        "new people", "grow the team", "growing the team", "headcount",
        "найм*", "наймат*", "рекрут*", "ваканс*", "набира*", "нових людей",
    ),
    "referrals": ("referr*", "refer", "рекомендац*", "реферал*"),
    "interviews": (
        "interview*", "candidate*", "ghost*", "application*", "applicant*",
        "співбесід*", "кандидат*",
    ),
    "internal-mobility": (
        "internal*", "move teams", "moving teams", "switch teams", "change teams",
        "transfer*", "career*", "кар'єр*", "перейти в іншу команду", "внутрішн*",
    ),
    "values": (
        "value", "values", "culture", "cultural", "candour", "candor", "craft",
        "цінност*", "культур*", "відвертіст*", "майстерніст*",
    ),
    "feedback": (
        "feedback", "bad news", "speak up", "speaking up", "raise a problem",
        "raising a problem", "raise problems", "raise concerns", "psychological safety",
        "зворотн* зв'яз*", "погані новини", "погану новину", "проблем*",
    ),
    "blameless": (
        "blame*", "mistake*", "postmortem*", "post-mortem*", "retro*", "went wrong",
        "помилк*", "винн*", "звинувач*",
    ),
    "recognition": (
        "recognition", "recogni*", "shout-out*", "shoutout*", "shout out*", "appreciat*",
        "визнан*", "подяк*",
    ),
    "inclusion": (
        "inclusion", "inclusive", "diversity", "diverse", "dei", "equity of opportunity",
        "fair*", "інклюзи*", "різноманітт*", "справедлив*",
    ),
    "offsite": (
        "offsite*", "off-site*", "in person", "in-person", "retreat*", "meet up",
        "get-together", "get together", "виїзн*", "наживо", "особисто зустр*",
    ),
    "learning": (
        "learn*", "training*", "course*", "conference*", "upskill*", "study*", "books",
        "навчан*", "навча*", "учит*", "курс*", "конференц*", "тренінг*",
    ),
    "security": (
        "security", "secure", "hack*", "breach*", "cyber*", "password*", "passkey*",
        "phish*", "scam*", "suspicious", "2fa", "mfa", "hardware key*",
        "безпек*", "злам*", "парол*", "фішинг*", "кібер*", "підозріл*", "шахра*",
    ),
    "privacy": (
        "customer data", "data", "privacy", "gdpr", "region*", "residency",
        "дан* клієнт*", "конфіденційн*", "приватн*",
    ),
    "ai": (
        "ai", "a.i", "artificial intelligence", "chatgpt", "gpt*", "copilot*", "llm*",
        "machine learning", "genai", "generative", "claude", "gemini",
        "ші", "штучн* інтелект*", "нейромереж*", "чатгпт", "шт інтелект*",
    ),
    "forecasts": ("forecast*", "prediction*", "predict*", "прогноз*"),
    "automation": (
        "automat*", "replace*", "take our jobs", "take my job", "tedious",
        "автоматиз*", "замін*",
    ),
    "clone": (
        "clone", "avatar", "bot", "digital twin", "this ai", "you real", "are you real",
        "who are you", "клон*", "аватар*", "бот", "хто ти", "хто ви",
    ),
    "customers": (
        "customer*", "client*", "user*", "buyer*",
        "клієнт*", "замовник*", "користувач*",
    ),
    "support": (
        "support", "helpdesk", "tickets", "rotation", "підтримк*", "ротац*",
    ),
    "onboarding": (
        "onboard*", "churn*", "retention", "leave us", "leaving us", "left us", "cancel*",
        "онбординг*", "відтік*",
    ),
    "satisfaction": (
        "satisf*", "nps", "happy customers", "reviews", "задоволен*",
    ),
    "results": (
        "result*", "quarter*", "q1", "q2", "q3", "q4", "revenue*", "sales", "numbers",
        "earnings", "performance", "how are we doing", "how is the business",
        "результат*", "квартал*", "виручк*", "продаж*", "доход*", "дохід",
        "як справи в компанії", "як у нас справи",
    ),
    "finances": (
        "financ*", "runway", "funding", "fundrais*", "cash", "money", "investor*",
        "profit*", "фінанс*", "інвестор*", "гроші", "прибут*",
    ),
    "reliability": (
        "reliab*", "uptime", "outage*", "downtime", "incident*", "status page", "sla",
        "надійн*", "збо*", "аварі*", "інцидент*", "доступніст*",
    ),
    "on-call": (
        "on-call", "on call", "oncall", "pager*", "paged", "night*",
        "чергуван*", "черговий", "вночі",
    ),
}


def build_lexicon(concepts: dict[str, tuple[str, ...]] | None = None) -> KeywordSet:
    """The concept matcher (built once per retriever; matching is on plain words)."""
    return KeywordSet((name, kws) for name, kws in (concepts or CONCEPTS).items())


def concepts_in(lexicon: KeywordSet, seq: Sequence[str]) -> list[str]:
    """Names of the concepts mentioned in a word sequence."""
    return [name for name, _ in lexicon.matches(seq)]
