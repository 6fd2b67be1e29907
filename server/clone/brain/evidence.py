"""Words a sensitive question is hardly ever asked without: the gate's evidence check.

The intent classifier (:mod:`.intent`) reads a question by example. On a question whose
content words are new to the examples ("will the quiz be held again?", "чи поїдемо знову
в похід?") it has little to go on, and its risk lands in the middle band, where the gate
fails closed: 1 harmless question in 5 of a new set escalated. Sensitive matters,
unlike the things a company talks about, are a closed list: pay and money, jobs and
people leaving, offices and teams closing, buyers and owners, courts and complaints,
health and private life, rumours, figures. A question of middling risk that names none
of them, in any of the three languages, is recorded as a knowledge gap for the leader
rather than escalated (:class:`~.gate.Gate`).

The list is deliberately wide: it does not escalate anything by itself (the keyword
floor, :mod:`.policy`, and the classifier do), it only says when the classifier's
middling risk has nothing sensitive to stand on. So it keeps words of two meanings
("cut", "replace", "close", "leave", "team" in "whole team", "people", "how much"): a
question with one of them is judged as before. Its gaps are what it costs: a sensitive
question of middling risk worded only in words missing here would be a knowledge gap
(still recorded, never answered), which is why a word is added here rather than left
out when in doubt. Keyword syntax of :mod:`.matching`; words are matched after the
policy's de-obfuscation (spaced letters, leetspeak, look-alikes).
"""

from __future__ import annotations

from townhall.server.clone.brain.matching import parse_table

#: ``matter: keyword, ...`` lines (English, Ukrainian, Russian lines per matter).
EVIDENCE_TABLE = """
money: pay, pays, paid, paying, payout*, payment*, salar*, wage*, money, cash, earn*, income,
       bonus*, reward*, raise, raises, pay rise*, increase*, compens*, benefit*, package*,
       equity, stock*, share, shares, option*, vest*, pension*, allowance*, top-up*, bump*,
       inflation, budget*, price*, cost*, expens*, spend*, spent, dollar*, euro*, million*,
       thousand*, percent*, per cent, how much, afford*, fund*, financ*, bank*, loan*, debt*,
       owe, owes, owed, tax, taxes, invoice*, grade*, band*, level*, promot*, title*
money: зарплат*, зп, оплат*, плата, плату, плати*, платя*, платит*, платіж*, гроші, грош*,
       заробі*, заробля*, дохід*, доход*, винагород*, бонус*, премі*, ставк*, виплат*,
       надбавк*, підвищ*, компенс*, пенсі*, акці*, опціон*, частк*, сума, суму, суми, сумі,
       бюджет*, кошт*, фінанс*, скільки, відсот*, грн, гривн*, долар*, мільйон*, тисяч*,
       витрат*, витрач*, ціна, ціни, ціну, вартіст*, податк*, борг*, кредит*, рівень, рівня,
       грейд*, посад*
money: зарплат*, оплат*, плата, плату, плати*, платя*, платит*, платеж*, деньг*, денег,
       денеж*, заработ*, доход*, вознагражд*, бонус*, преми*, ставк*, выплат*, надбавк*,
       повыш*, компенс*, пенси*, акци*, опцион*, доля, долю, доли, сумм*, бюджет*, средств*,
       финанс*, сколько, процент*, рубл*, гривн*, доллар*, миллион*, тысяч*, расход*, трат*,
       потрат*, цена, цены, цену, стоимост*, налог*, долг*, кредит*, уровень, уровня, грейд*,
       должност*
jobs: job, jobs, role, roles, position*, career*, people, person, staff*, employ*, worker*,
      headcount, hire*, hiring, contractor*, freelanc*, colleague*, manager*, boss*, lead,
      leads, leader*, leadership, ceo, cto, cfo, coo, vp, founder*, director*, head, heads,
      executive*, exec, execs, hr, dana, cv, resume, offer*, notice, probation*, contract*,
      visa*, my future, our future, gone, going away, go away, finish*, fold*, disband*,
      dissolv*, shut*, clos*, cut, cuts, cutting, trim*, reduc*, shrink*, fewer, smaller,
      downsiz*, replac*, let go, let * go, letting go, leav*, left, quit*, resign*, depart*,
      exit*, step down, stepping down, steps down, fire, fired, firing, sack*, axe*, lose,
      loses, losing, lost, keep my, keep our, survive*, relocat*, transfer*, office*, site*,
      location*, hub*, studio*, team, teams, division*, freeze*, frozen, pause*, merge with,
      merged, merging with, consolidat*, outsourc*, offshor*
jobs: робот*, робіт*, посад*, роль, ролі, роллю, кар'єр*, люд*, людин*, працівник*,
      співробітник*, персонал*, штат*, найм*, підрядник*, фрілан*, колег*, керівн*,
      директор*, засновни*, менеджер*, начальни*, дана, дану, даною, резюме, контракт*,
      договір*, договор*, зникн*, зник*, розформ*, ліквід*, об'єдна*, злитт*, зли*, звільн*,
      скороч*, скорот*, уріз*, замін*, заміня*, закри*, закрит*, менше, піти, піде, підуть,
      йде, іде, йдуть, пішов, пішла, пішли, відход*, відставк*, втрат*, втрач*, переїзд*,
      переїж*, офіс*, філі*, майданчик*, локаці*, студі*, команд*, відділ*, підрозділ*,
      заморож*, аутсорс*, хаб*, вижив*, переведу*, переведе*, віза, візу, візи,
      випробуван*, призупин*, консолід*
jobs: работ*, должност*, роль, роли, ролью, карьер*, люд*, человек*, сотрудник*,
      работник*, персонал*, штат*, найм*, подрядчик*, фрилан*, коллег*, руковод*,
      директор*, основател*, менеджер*, начальни*, дана, дану, даной, резюме, контракт*,
      договор*, исчезн*, исчез*, расформ*, ликвид*, объедин*, слия*, соль*, сольют, увол*,
      уволь*, сокращ*, сократ*, уреза*, урез*, замен*, заменя*, закро*, закры*, меньше,
      уйти, уйдёт, уйдет, уйдут, уходит, уходят, ушёл, ушел, ушла, ушли, уход*, отставк*,
      потер*, теря*, переезд*, переед*, офис*, филиал*, площадк*, локаци*, студи*, команд*,
      отдел*, подраздел*, замороз*, аутсорс*, хаб*, выжив*, пережив*, виза, визу, визы,
      испытательн*, приостанов*, консолид*
deals: buy*, bought, sell*, sold, sale, acqui*, merger*, takeover*, take over, take us,
       taken over, investor*, invest*, stake*, owner*, ownership, valuation*, worth, deal,
       deals, public, listing, listed, list on, stock exchange, stock market, nasdaq, nyse,
       ipo, float*, under control, take control
deals: купи*, купу*, купл*, прода*, покуп*, придба*, поглин*, інвест*, власни*, біржа,
       біржі, біржу, біржов*, угод*, під контроль, розміщ*
deals: куп*, прода*, покуп*, приобр*, поглощ*, инвест*, владел*, бирж*, сделк*,
       под контроль, размещ*
legal: court*, sue, sues, sued, suing, law, laws, lawsuit*, legal*, lawyer*, attorney*,
       complain*, complaint*, investigat*, inquir*, audit*, regulat*, authorit*, fined,
       fines, penalt*, settle*, breach*, police, harass*, discrimin*, whistle*, nda, ndas,
       dispute*, claim*, accus*, allegation*, misconduct, fraud*, scandal*, escort*,
       arrest*, disciplin*
legal: суд*, позов*, юрист*, адвокат*, закон*, скарг*, розслід*, аудит*, аудитор*, штраф*,
       порушен*, поліці*, домаганн*, дискримін*, звинувач*, шахрай*, скандал*, вивели,
       вивів, дисциплін*
legal: суд*, иск, иска, иски, иском, юрист*, адвокат*, закон*, жалоб*, расслед*, аудит*,
       аудитор*, штраф*, нарушен*, полици*, домогательств*, дискримин*, обвин*, мошен*,
       скандал*, вывели, вывел, дисциплин*
health: health*, ill, illness*, sick*, unwell, disease*, diagnos*, hospital*, doctor*,
        medical*, surgery, pregnan*, maternity, paternity, mental*, therap*, burn*, stress*,
        treatment*, injur*, disabil*
health: здоров*, хвор*, захвор*, лікар*, лікарн*, зле, діагноз*, вагітн*, декрет*,
        лікуван*, психолог*, стрес*, вигор*, травм*, інвалідн*
health: здоров*, болеет, болеют, болел*, болезн*, больн*, забол*, врач*, лечен*,
        диагноз*, беремен*, декрет*, психолог*, стресс*, выгор*, травм*, инвалидн*
personal: family, families, divorc*, private*, personal*, age, religio*, politic*, vote*,
          voting, wife, husband, child*, kids, address, relationship*, dating, affair*,
          crisis, funeral*, baby, wedding*
personal: сім'*, сімей*, родин*, особист*, приватн*, розлуч*, вік, віку, релігі*,
          політи*, голосу*, дружин*, чолові*, дитин*, діти, дітей, адрес*, стосун*, криз*,
          весілл*
personal: семь*, семей*, личн*, частн*, развод*, возраст*, религи*, полити*, голосо*,
          жена, жены, жену, муж, мужа, дети, детей, ребён*, ребен*, адрес*, отношен*,
          кризис*, свадьб*
rumours: rumo*, gossip*, heard, hearing, whisper*, true, truth, they say, people say,
         everyone says, someone said, word is, leak*, secret*, hidden, story, stories
rumours: чутк*, плітк*, кажуть, казали, говорять, шепоч*, шепч*, правда, правду, чув, чула,
         чули, чуємо, таємн*, секрет*, злив*, приховую*
rumours: слух*, сплетн*, говорят, поговарива*, шепч*, шепот*, правда, правду, слышал*,
         тайн*, секрет*, слив*, скрыва*
figures: revenue*, profit*, margin*, loss, losses, burn*, runway, churn*, figure*, exact*,
         precise*, actual*, sales, turnover, valuation*
figures: виручк*, прибут*, маржа, маржу, маржі, збит*, цифри, цифр, цифрах, точн*,
         насправді, реальн*, продаж*, оборот*
figures: выручк*, прибыл*, маржа, маржу, маржи, убыт*, цифры, цифр, цифрах, точн*,
         на самом деле, реальн*, продаж*, оборот*
change: restructur*, reorg*, re-org*, reorganis*, reorganiz*, combine with, bigger group,
        larger group, parent company, own, owns, owned, swallow*, abroad, move out,
        moving out, dismiss*, redundan*, unnecessary, who stays, who goes, still be here,
        still work here, let + go, round*, a place for, worry*, worried, real reason,
        performance, rating*,
        not allowed, forbid*, stay away from, hacked, stolen, squeeze*, take home,
        the same as, as much as, get the same, receive*
change: реорган*, реструкт*, структур*, перебудов*, раунд*, об'єдну*, зменш*, витек*, витік*,
        злама*, вкрали, очол*, відпустит*, відпустять, хвилю*, робоч*, ставок, оклад*,
        подорожча*, отриму*, стільки ж, стільки само, працюват* тут, ще працю*, заборон*
change: реорган*, реструкт*, структур*, перестро*, раунд*, поглот*, уменьш*, утечк*, утек*, взлом*,
        украли, возглав*, отпуст* + половин*, пережива*, рабоч*, ставок, оклад*, подорожа*,
        получа*, получат, получим, столько же, запрет*
"""
EVIDENCE: dict[str, tuple[str, ...]] = parse_table(EVIDENCE_TABLE)
