"""A small bilingual lexicon of all-hands concepts: synonyms and an en <-> uk bridge.

Bag-of-words retrieval misses paraphrases ("work from home" vs "remote-first") and cannot
match a Ukrainian question to an English statement at all. Both statements and
questions are tagged with the concepts they mention, and the concept tags take part in
retrieval as extra terms. A statement's ``tags`` (or ``topic``) named like a concept
count as that concept.

The table is one concept per line, ``name: keyword, keyword, ...``; indented lines
continue the previous one and a name may repeat (English and Ukrainian on separate
lines). Keywords use the syntax of :mod:`.matching`: ``word``, ``prefix*``, phrases.
"""

from __future__ import annotations

from collections.abc import Sequence

from townhall.server.clone.brain.matching import KeywordSet, parse_table

CONCEPT_TABLE = """
strategy: strategy, strategic*, priorit*, focus*, vision, direction, long-term, big picture,
          mid-market, midmarket
strategy: стратег*, пріоритет*, бачення, напрям*, зосередж*, фокус*, середнього бізнесу
competition: competitor*, competition, competing, rival*, compete
competition: конкурент*, конкуренц*
roadmap: roadmap*, road map, launch*, release*, ship*, feature*, module*, demand-planning,
         demand planning, beta, product plan*, what's next
roadmap: дорожн* карт*, запуск*, реліз*, функці*, модул*, бета*, планування попиту
mobile: mobile, app, apps, phone*, smartphone*, ios, android
mobile: мобільн*, застосун*, додат*, телефон*, смартфон*
integrations: integrat*, connector*, erp*, sap, api, apis
integrations: інтеграц*, конектор*
reporting: report*, dashboard*, legacy, retire, retires, retiring, retired, deprecat*, sunset*
reporting: звіт*, дашборд*
remote: remote*, wfh, work from home, working from home, from home, hybrid, anywhere,
        distributed, remote-first
remote: віддален*, дистанційн*, вдома, з дому, гібридн*
office: office*, in-office, return to office, rto, attendance, commut*, desk*, lviv
office: офіс*, львів*, присутн*
time-zones: time zone*, timezone*, time-zone*, overlap*, core hours, working hours
time-zones: часов* пояс*, годин*
meetings: meeting*, calls, zoom, async*, asynchronous*, written, writing
meetings: зустріч*, нарад*, мітинг*, дзвінк*
home-office: home-office, home office, equipment, chair*, monitor*, laptop*, setup
home-office: стіл*, крісл*, обладнан*, ноутбук*
hiring: hir*, recruit*, headcount, job opening*, vacanc*, open role*, new people,
        grow the team, growing the team
hiring: найм*, наймат*, рекрут*, ваканс*, набира*, нових людей
ideas: idea*, suggest*, propos*, decide*, decid*, decision*, feature request*, who sets
ideas: ідея, ідеї, ідей, пропозиц*, пропону*, вирішу*, рішенн*
referrals: referr*, refer
referrals: рекомендац*, реферал*
interviews: interview*, candidate*, ghost*, application*, applicant*
interviews: співбесід*, кандидат*
internal-mobility: internal*, move teams, moving teams, switch teams, change teams,
                   internal transfer*, team transfer*, transfer to another team,
                   career*
internal-mobility: кар'єр*, перейти в іншу команду, внутрішн*
values: value, values, culture, cultural, candour, candor, craft
values: цінност*, культур*, відвертіст*, майстерніст*
feedback: feedback, bad news, speak up, speaking up, raise a problem, raising a problem,
          raise problems, raise concerns, psychological safety
feedback: зворотн* зв'яз*, погані новини, погану новину, проблем*
blameless: blame*, mistake*, postmortem*, post-mortem*, retro*, went wrong
blameless: помилк*, винн*, звинувач*, розбір*
recognition: recognition, recogni*, shout-out*, shoutout*, shout out*, appreciat*
recognition: визнан*, подяк*
inclusion: inclusion, inclusive, diversity, diverse, dei, fair*
inclusion: інклюзи*, різноманітт*, справедлив*
offsite: offsite*, off-site*, in person, in-person, retreat*, meet up, get-together,
         get together
offsite: виїзн*, офсайт*, наживо, особисто зустр*
learning: learn*, training*, courses, a course, the course, online course*, conference*,
          upskill*, study*, skill*, reskill*, professional development, personal development,
          grow professionally
learning: навчан*, навча*, учит*, курс*, конференц*, тренінг*, навичк*, навичок,
          професійн* розвит*
security: security, secure, hack*, breach*, cyber*, password*, passkey*, phish*, scam*,
          suspicious, 2fa, mfa, hardware key*
security: безпек*, злам*, парол*, фішинг*, кібер*, підозріл*, шахра*
privacy: customer data, data, privacy, gdpr, region*, residency
privacy: дан* клієнт*, конфіденційн*, приватніст*, приватн* дан*, приватн* інформац*
ai: ai, a.i, artificial intelligence, chatgpt, gpt*, copilot*, llm*, machine learning, genai,
    generative, claude, gemini
ai: ші, штучн* інтелект*, нейромереж*, чатгпт, шт інтелект*
ai-tools: chatgpt, copilot*, claude, gemini, ai tool*, ai assistant*, tool*, assistant*
ai-tools: чатгпт, інструмент*, асистент*
forecasts: forecast*, prediction*, predict*
forecasts: прогноз*
automation: automat*, replace*, take our jobs, take my job, tedious
automation: автоматиз*, замін*
clone: clone, avatar, bot, digital twin, this ai, you real, are you real, who are you
clone: клон*, аватар*, бот, хто ти, хто ви
customers: customer*, client*, user*, buyer*
customers: клієнт*, замовник*, користувач*
support: customer support, support team*, support rotation*, support ticket*, helpdesk,
         help desk, tickets, rotation
support: підтримк*, ротац*
onboarding: onboard*, churn*, retention, leave us, leaving us, left us, cancel*
onboarding: онбординг*, відтік*
satisfaction: satisf*, nps, happy customers, reviews
satisfaction: задоволен*
results: result*, quarter*, q1, q2, q3, q4, revenue*, sales, numbers, earnings, performance,
         how are we doing, how is the business
results: результат*, квартал*, виручк*, продаж*, доход*, дохід, як справи в компанії,
         як у нас справи
q1: q1, first quarter
q1: перш* квартал*
q2: q2, second quarter
q2: друг* квартал*
finances: financ*, runway, funding, fundrais*, cash, money, investor*, profit*
finances: фінанс*, інвестор*, гроші, прибут*
reliability: reliab*, uptime, outage*, downtime, incident*, status page, sla
reliability: надійн*, збо*, аварі*, інцидент*, доступніст*
on-call: on-call, on call, oncall, pager*, paged
engineering: engineering, engineer*, developer*
engineering: інженер*, розробник*
on-call: чергуван*, черговий, вночі
"""


CONCEPTS: dict[str, tuple[str, ...]] = parse_table(CONCEPT_TABLE)


def build_lexicon(concepts: dict[str, tuple[str, ...]] | None = None) -> KeywordSet:
    """The concept matcher (built once per retriever; matching is on plain words)."""
    return KeywordSet((name, kws) for name, kws in (concepts or CONCEPTS).items())


def concepts_in(lexicon: KeywordSet, seq: Sequence[str]) -> list[str]:
    """Names of the concepts mentioned in a word sequence."""
    return [name for name, _ in lexicon.matches(seq)]
