"""A question's frame, dropped, so the intent model weighs what a question is about.

"Will there be layoffs this year?" and "will there be a hackathon again this year?" share
everything but one word. Trained on examples where "will there be … this year" mostly
asked about sensitive things, a model over every word learnt the frame, and an unseen
harmless question of that shape escalated with no evidence of a sensitive topic. The
intent model therefore also reads a question without its frame words: question words,
auxiliaries and modals, articles, prepositions and conjunctions, personal pronouns (not
the possessives "my" and "our": "my job", "our pay" say whose matter it is), and vague
time words ("again", "this year", "next month", the seasons), in English, Ukrainian and
Russian (:data:`FRAME_WORDS`, a short list written for this rather than a general
stop-word list: those hold content words such as "work" or "people", and drop
second-person pronouns, which is how a question about the clone, or an order given to
it, is told).

Kept on purpose: "you" and its forms in the three languages (questions about the clone,
orders to it, requests for its word), the "much" and "many" of "how much", "how many"
("скільки", "сколько": an amount asked for is what a question on pay or unpublished
figures is about), negation-bearing content ("nobody", "never"), and
every noun, verb and adjective of substance. A question made only of frame words is
judged whole (:func:`content`).
"""

from __future__ import annotations

import re

_EN = """
a an the is are was were be been being am do does did done doing will would shall should
can could may might must have has had having there here this that these those it its
i me we us they them their theirs he she him her his hers what which who
whom whose when where why how if then than so and or but not of to in on at for from by
with about into onto over after before again also any some all every each more most very
just still ever soon now yet already next last year years month months week weeks day
days today tomorrow tonight spring summer autumn fall winter january february march april
june july august september october november december weekend once going get gets got
happen happens happening there's it's what's where's who's how's we're i'm
they're isn't aren't wasn't weren't won't don't doesn't didn't can't couldn't wouldn't
shouldn't i've we've we'll i'll they'll it'll anyone anybody someone somebody something
anything everyone everybody everything one too really actually time
"""
_UK = """
чи це ця цей ці цих цим цю цій цього цьому той та ті тих і й а але або що як коли де чому
хто який яка яке які якого якої яких якому якій в у на з із зі зо до від для по про
за під над після перед через без при між ми я він вона воно вони нас нам нами мене мені
мною його її їх їм їхній їхня їхнє їхні
буде будуть будемо будете
будеш було був була були є бути знову ще вже рік року році роки років місяць місяця
місяці тиждень тижня тижні день дні наступного наступному наступний наступна наступної
минулого минулому минулий минула минулої весна весни навесні влітку літа літо восени осені
осінь взимку зими зима же б би не так то тут там дуже також теж хтось щось колись всі все
весь вся усі усе всієї всього щоб якщо бо цьогоріч торік
"""
_RU = """
ли будет будут будем будете будешь был была было были есть быть снова опять ещё еще уже
этот эта это эти этого этой этом этому эту этим году год года лет месяц месяца месяце
неделе неделю неделя день дни следующем следующий следующего следующей прошлом прошлого
прошлый прошлой в во на с со к ко от для по о об про за под над после перед через без при
между у из мы я он она оно они нас нам нами меня мне мной его её ее их им
наши нашего нашей
и а но или что как когда где почему кто какой какая какое какие какого какой каких
же бы не так то тут там очень также тоже весной весна летом лето осенью осень
зимой зима весь вся всё все всей всего кто-то что-то чтобы если потому
"""
#: Words of a question's frame (lower case, folded as :func:`~.textnorm.fold` leaves them).
FRAME_WORDS = frozenset((_EN + _UK + _RU).split())
_WORD = re.compile(r"\S+")
_EDGES = "\"'’‘“”«»()[]{}.,;:!?¿¡…—–-"


def content(text: str) -> str:
    """``text`` without its frame words (compared lower-cased, punctuation stripped from
    their edges), or ``text`` itself when nothing else is left."""
    kept = [w for w in _WORD.findall(text) if w.lower().strip(_EDGES) not in FRAME_WORDS]
    if not any(w.strip(_EDGES) for w in kept):
        return text
    return " ".join(kept)
