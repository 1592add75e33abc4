"""The language of the hard synthetic preset: a sign grammar and its German translation.

Signs follow TIME [PLACE] SUBJECT [ADVERB] [RECIPIENT] [OBJECT] [DESTINATION] VERB [MODAL]
[NICHT] [FRAGE] (time-topic-comment, verb last); a noun phrase is signed [MODIFIER] NOUN
[ADJECTIVE] [NUMBER] [IX] (``IX``, pointing, makes it definite). The German sentence puts
the finite verb second (first in a ``FRAGE`` question), splits separable verbs
("ruft ... an"), forms the perfect with haben/sein after a past time sign and
"werden" after a distant future one, puts modal verbs second and the infinitive last,
inflects articles, adjectives and nouns for gender, case (nominative / accusative /
dative, prepositions of place and direction with contractions) and number, conjugates
for person, negates with "kein" or "nicht", writes a modifier noun and its head as one
compound ("apfel" + "kuchen" -> "apfelkuchen") and picks synonyms by context
("fressen" for an animal that eats). The translation is a function of the sign
sequence (:func:`translate`), hence learnable, but it is a translation, not a
transcription: words are reordered, added, inflected and fused.

:func:`sample_sentence` draws a sign sequence of 5-12 signs, optionally from a subset
of the signs (dev/test use only signs seen in training) or containing a given sign.
"""
from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

import numpy as np

# --------------------------------------------------------------------------- lexicon

# time sign -> (German phrase, tense): past = perfect, present, future = werden + infinitive
TIMES: Dict[str, Tuple[str, str]] = {
    "GESTERN": ("gestern", "past"), "VORGESTERN": ("vorgestern", "past"),
    "LETZTE-WOCHE": ("letzte woche", "past"), "LETZTES-JAHR": ("letztes jahr", "past"),
    "FRUEHER": ("früher", "past"), "VORHIN": ("vorhin", "past"),
    "HEUTE": ("heute", "present"), "JETZT": ("jetzt", "present"),
    "MONTAG": ("am montag", "present"), "DIENSTAG": ("am dienstag", "present"),
    "MITTWOCH": ("am mittwoch", "present"), "DONNERSTAG": ("am donnerstag", "present"),
    "FREITAG": ("am freitag", "present"), "SAMSTAG": ("am samstag", "present"),
    "SONNTAG": ("am sonntag", "present"),
    "MORGEN": ("morgen", "present"), "UEBERMORGEN": ("übermorgen", "present"), "BALD": ("bald", "present"),
    "NAECHSTE-WOCHE": ("nächste woche", "future"), "NAECHSTES-JAHR": ("nächstes jahr", "future"),
    "SPAETER": ("später", "future"),
}

# pronoun sign -> (word, person index 0..5 = ich du er/sie wir ihr sie)
PRONOUNS: Dict[str, Tuple[str, int]] = {
    "ICH": ("ich", 0), "DU": ("du", 1), "ER": ("er", 2), "SIE": ("sie", 2), "WIR": ("wir", 3), "IHR": ("ihr", 4),
    "SIE-PL": ("sie", 5),
}


@dataclass(frozen=True)
class Noun:
    lemma: str
    gender: str  # m | f | n
    plural: str
    cls: str  # P person, A animal, F food, D drink, R readable, O object, L place
    weak: bool = False  # weak masculine: accusative/dative singular = plural form ("den studenten")
    compound: str = ""  # form as the first part of a compound ("kinder" in "kinderbuch"); "" = none
    loc: str = ""  # places: preposition of location (+ dative)
    dir: str = ""  # places: preposition of direction (in/an/auf + accusative, zu + dative)


def _nouns(cls: str, spec: str, loc: Dict[str, Tuple[str, str]] = None) -> Dict[str, Noun]:
    """``SIGN lemma gender plural [compound] [w]`` entries separated by ';'."""
    out = {}
    for entry in spec.split(";"):
        parts = entry.split()
        if not parts:
            continue
        sign, lemma, gender, plural = parts[:4]
        rest = parts[4:]
        weak = "w" in rest
        cmp = next((r for r in rest if r != "w"), "")
        lp, dp = (loc or {}).get(sign, ("in", "in"))
        out[sign] = Noun(lemma, gender, plural, cls, weak, cmp, lp if cls == "L" else "", dp if cls == "L" else "")
    return out


NOUNS: Dict[str, Noun] = {}
NOUNS.update(_nouns("P", """
    MANN mann m männer; FRAU frau f frauen; KIND kind n kinder kinder; JUNGE junge m jungen w;
    MAEDCHEN mädchen n mädchen; LEHRER lehrer m lehrer; LEHRERIN lehrerin f lehrerinnen; ARZT arzt m ärzte;
    AERZTIN ärztin f ärztinnen; NACHBAR nachbar m nachbarn w; FREUND freund m freunde; FREUNDIN freundin f freundinnen;
    MUTTER mutter f mütter; VATER vater m väter; BRUDER bruder m brüder; SCHWESTER schwester f schwestern;
    OMA oma f omas; OPA opa m opas; POLIZIST polizist m polizisten w; KOCH koch m köche;
    BAUER bauer m bauern w; STUDENT student m studenten w; CHEF chef m chefs; VERKAEUFER verkäufer m verkäufer;
    FAHRER fahrer m fahrer; SCHUELER schüler m schüler; KOLLEGE kollege m kollegen w; TOURIST tourist m touristen w;
    BAECKER bäcker m bäcker; GAST gast m gäste"""))
NOUNS.update(_nouns("A", """
    HUND hund m hunde hunde; KATZE katze f katzen katzen; PFERD pferd n pferde pferde; VOGEL vogel m vögel vogel;
    FISCH fisch m fische fisch; KUH kuh f kühe; SCHWEIN schwein n schweine; MAUS maus f mäuse;
    HASE hase m hasen w; ENTE ente f enten; SCHAF schaf n schafe; BAER bär m bären w"""))
NOUNS.update(_nouns("F", """
    APFEL apfel m äpfel apfel; BROT brot n brote brot; KUCHEN kuchen m kuchen kuchen; SUPPE suppe f suppen suppen;
    KAESE käse m käse käse; WURST wurst f würste wurst; EI ei n eier eier; BANANE banane f bananen bananen;
    TOMATE tomate f tomaten tomaten; KARTOFFEL kartoffel f kartoffeln kartoffel; SALAT salat m salate;
    PIZZA pizza f pizzas pizza; TORTE torte f torten torten; KEKS keks m kekse; BIRNE birne f birnen;
    ORANGE orange f orangen orangen"""))
NOUNS.update(_nouns("D", """
    KAFFEE kaffee m kaffees kaffee; TEE tee m tees tee; SAFT saft m säfte saft; WASSER wasser n wasser wasser;
    MILCH milch f milch milch; BIER bier n biere bier; WEIN wein m weine wein; LIMO limo f limos"""))
NOUNS.update(_nouns("R", """
    BUCH buch n bücher bücher; BRIEF brief m briefe brief; ZEITUNG zeitung f zeitungen zeitungs;
    KARTE karte f karten; HEFT heft n hefte; ZETTEL zettel m zettel; BILD bild n bilder bilder"""))
NOUNS.update(_nouns("O", """
    AUTO auto n autos auto; FAHRRAD fahrrad n fahrräder fahrrad; TISCH tisch m tische tisch; STUHL stuhl m stühle;
    TASCHE tasche f taschen taschen; SCHLUESSEL schlüssel m schlüssel; BLUME blume f blumen blumen;
    BALL ball m bälle ball; UHR uhr f uhren; LAMPE lampe f lampen; TELEFON telefon n telefone;
    COMPUTER computer m computer computer; TASSE tasse f tassen; FLASCHE flasche f flaschen; GLAS glas n gläser glas;
    TELLER teller m teller; MESSER messer n messer; KLEID kleid n kleider; HOSE hose f hosen; SCHUH schuh m schuhe;
    JACKE jacke f jacken; MUETZE mütze f mützen; GESCHENK geschenk n geschenke; SPIELZEUG spielzeug n spielzeuge;
    PUPPE puppe f puppen puppen; KISTE kiste f kisten; KORB korb m körbe; FENSTER fenster n fenster;
    TUER tür f türen; BETT bett n betten; KERZE kerze f kerzen; PAKET paket n pakete; ZUG zug m züge;
    BOOT boot n boote"""))
NOUNS.update(_nouns("L", """
    SCHULE schule f schulen schul; HAUS haus n häuser haus; GARTEN garten m gärten garten; STADT stadt f städte stadt;
    MARKT markt m märkte markt; BAHNHOF bahnhof m bahnhöfe; KIRCHE kirche f kirchen kirchen; PARK park m parks park;
    WALD wald m wälder wald; SEE see m seen see; BERG berg m berge berg; KUECHE küche f küchen küchen;
    BUERO büro n büros büro; KRANKENHAUS krankenhaus n krankenhäuser; STRAND strand m strände strand;
    SUPERMARKT supermarkt m supermärkte; BAECKEREI bäckerei f bäckereien; BIBLIOTHEK bibliothek f bibliotheken;
    KINO kino n kinos kino; RESTAURANT restaurant n restaurants; HOTEL hotel n hotels hotel; ZOO zoo m zoos;
    MUSEUM museum n museen; FLUGHAFEN flughafen m flughäfen; SPIELPLATZ spielplatz m spielplätze;
    HOF hof m höfe; DORF dorf n dörfer dorf; STRASSE straße f straßen straßen; BRUECKE brücke f brücken;
    INSEL insel f inseln""", loc={
    "MARKT": ("auf", "auf"), "BAHNHOF": ("an", "zu"), "SEE": ("an", "an"), "BERG": ("auf", "auf"),
    "STRAND": ("an", "an"), "FLUGHAFEN": ("an", "zu"), "SPIELPLATZ": ("auf", "auf"), "HOF": ("auf", "auf"),
    "STRASSE": ("auf", "auf"), "BRUECKE": ("auf", "auf"), "INSEL": ("auf", "auf"), "ZOO": ("in", "in"),
}))
# which noun classes a modifier noun may be compounded with
COMPOUND_HEADS = "PORFL"


@dataclass(frozen=True)
class Adjective:
    lemma: str
    stem: str  # before an ending ("teur" for "teuer")
    applies: str  # noun classes it describes


def _adjectives(spec: str) -> Dict[str, Adjective]:
    out = {}
    for entry in spec.split(";"):
        parts = entry.split()
        if parts:
            sign, lemma, applies = parts[:3]
            out[sign] = Adjective(lemma, parts[3] if len(parts) > 3 else lemma, applies)
    return out


ADJECTIVES = _adjectives("""
    GROSS groß PAORL; KLEIN klein PAORL; ALT alt PAORL; NEU neu ORL; JUNG jung PA; SCHOEN schön PAORL;
    ROT rot AOR; BLAU blau OR; GRUEN grün OR; GELB gelb AOR; SCHWARZ schwarz AOR; WEISS weiß AOR;
    BRAUN braun AO; LANG lang OR; KURZ kurz OR; TEUER teuer OFDR teur; BILLIG billig OFDR; SCHWER schwer OR;
    LEICHT leicht OR; WARM warm FDO; KALT kalt FDO; FRISCH frisch FD; LECKER lecker FD; SUESS süß FDA;
    SAUER sauer FD saur; MUEDE müde PA müd; KRANK krank PA; GLUECKLICH glücklich PA; TRAURIG traurig PA;
    LUSTIG lustig PAR; FREUNDLICH freundlich PA; KLUG klug PA; STARK stark PAD; LAUT laut PAO;
    LEISE leise PAO leis; SAUBER sauber OL; SCHMUTZIG schmutzig OLA; KAPUTT kaputt O; VOLL voll OL;
    LEER leer OL; DICK dick PAR; DUENN dünn PAR; HOCH hoch OL hoh; TIEF tief OL; NETT nett P;
    BOESE böse PA bös; WILD wild A; RUHIG ruhig PAL; BUNT bunt OR; HEISS heiß FD
""")
# context synonyms: adjective sign + noun class -> lemma/stem
ADJECTIVE_SYNONYMS = {("SCHOEN", "P"): Adjective("hübsch", "hübsch", "P")}


@dataclass(frozen=True)
class Verb:
    frame: str  # T accusative object, D dative object, DT dative + accusative, I intransitive, M motion
    base: str  # infinitive without separable particle
    third: str  # irregular 3rd person singular present ("" = regular)
    participle: str  # with the particle ("angerufen")
    aux: str  # h(aben) | s(ein)
    objects: str  # classes of the (accusative / dative) object
    particle: str = ""


def _verbs(frame: str, spec: str) -> Dict[str, Verb]:
    """``SIGN base third|- participle aux objects [particle]`` entries separated by ';'."""
    out = {}
    for entry in spec.split(";"):
        parts = entry.split()
        if parts:
            sign, base, third, part, aux, objects = parts[:6]
            out[sign] = Verb(frame, base, "" if third == "-" else third, part, aux,
                             "" if objects == "-" else objects, parts[6] if len(parts) > 6 else "")
    return out


VERBS: Dict[str, Verb] = {}
VERBS.update(_verbs("T", """
    ESSEN essen isst gegessen h F; TRINKEN trinken - getrunken h D; KAUFEN kaufen - gekauft h FDRO;
    LESEN lesen liest gelesen h R; SCHREIBEN schreiben - geschrieben h R; MALEN malen - gemalt h ROAP;
    SEHEN sehen sieht gesehen h PAORL; SUCHEN suchen - gesucht h PAOR; FINDEN finden - gefunden h PAOR;
    KOCHEN kochen - gekocht h FD; BACKEN backen - gebacken h F; WASCHEN waschen wäscht gewaschen h OA;
    TRAGEN tragen trägt getragen h OR; REPARIEREN reparieren - repariert h O; BAUEN bauen - gebaut h O;
    VERLIEREN verlieren - verloren h OR; BRAUCHEN brauchen - gebraucht h OFDR; LIEBEN lieben - geliebt h PAFD;
    KENNEN kennen - gekannt h PL; BESUCHEN besuchen - besucht h PL; FRAGEN fragen - gefragt h P;
    ANRUFEN rufen - angerufen h P an; EINLADEN laden lädt eingeladen h P ein; ABHOLEN holen - abgeholt h PO ab;
    AUFRAEUMEN räumen - aufgeräumt h OL auf; EINKAUFEN kaufen - eingekauft h FD ein;
    AUFMACHEN machen - aufgemacht h O auf; ZUMACHEN machen - zugemacht h O zu;
    ANSCHAUEN schauen - angeschaut h ROPL an; AUSLEIHEN leihen - ausgeliehen h RO aus;
    WERFEN werfen wirft geworfen h O; NEHMEN nehmen nimmt genommen h OFR; VERGESSEN vergessen vergisst vergessen h OR;
    TREFFEN treffen trifft getroffen h P"""))
VERBS.update(_verbs("D", """
    HELFEN helfen hilft geholfen h PA; DANKEN danken - gedankt h P; FOLGEN folgen - gefolgt s PA;
    ANTWORTEN antworten - geantwortet h P; GRATULIEREN gratulieren - gratuliert h P; ZUHOEREN hören - zugehört h P zu"""))
VERBS.update(_verbs("DT", """
    GEBEN geben gibt gegeben h FDOR; SCHENKEN schenken - geschenkt h ORF; ZEIGEN zeigen - gezeigt h OR;
    SCHICKEN schicken - geschickt h RO; BRINGEN bringen - gebracht h FDOR; LEIHEN leihen - geliehen h OR;
    VERKAUFEN verkaufen - verkauft h OF; MITBRINGEN bringen - mitgebracht h FDO mit;
    VORLESEN lesen liest vorgelesen h R vor; ERKLAEREN erklären - erklärt h R"""))
VERBS.update(_verbs("I", """
    SCHLAFEN schlafen schläft geschlafen h -; ARBEITEN arbeiten - gearbeitet h -; LACHEN lachen - gelacht h -;
    WARTEN warten - gewartet h -; SPIELEN spielen - gespielt h -; SCHWIMMEN schwimmen - geschwommen s -;
    TANZEN tanzen - getanzt h -; SINGEN singen - gesungen h -; WEINEN weinen - geweint h -; LERNEN lernen - gelernt h -;
    FRUEHSTUECKEN frühstücken - gefrühstückt h -; TELEFONIEREN telefonieren - telefoniert h -;
    AUFSTEHEN stehen - aufgestanden s - auf; SITZEN sitzen - gesessen h -"""))
VERBS.update(_verbs("M", """
    GEHEN gehen - gegangen s -; FAHREN fahren fährt gefahren s -; FLIEGEN fliegen - geflogen s -;
    LAUFEN laufen läuft gelaufen s -; KOMMEN kommen - gekommen s -; REISEN reisen - gereist s -;
    WANDERN wandern - gewandert s -; RENNEN rennen - gerannt s -; UMZIEHEN ziehen - umgezogen s - um"""))
# context synonyms: verb sign + subject class -> verb
VERB_SYNONYMS = {
    ("ESSEN", "A"): Verb("T", "fressen", "frisst", "gefressen", "h", "F"),
    ("TRINKEN", "A"): Verb("T", "saufen", "säuft", "gesoffen", "h", "D"),
}

# modal sign -> (present forms by person, past stem)
MODALS: Dict[str, Tuple[Tuple[str, ...], str]] = {
    "WOLLEN": (("will", "willst", "will", "wollen", "wollt", "wollen"), "wollte"),
    "KOENNEN": (("kann", "kannst", "kann", "können", "könnt", "können"), "konnte"),
    "MUESSEN": (("muss", "musst", "muss", "müssen", "müsst", "müssen"), "musste"),
    "DUERFEN": (("darf", "darfst", "darf", "dürfen", "dürft", "dürfen"), "durfte"),
    "SOLLEN": (("soll", "sollst", "soll", "sollen", "sollt", "sollen"), "sollte"),
}
AUX = {
    "h": ("habe", "hast", "hat", "haben", "habt", "haben"),
    "s": ("bin", "bist", "ist", "sind", "seid", "sind"),
    "werden": ("werde", "wirst", "wird", "werden", "werdet", "werden"),
}
NUMBERS = {"ZWEI": "zwei", "DREI": "drei", "VIER": "vier", "FUENF": "fünf", "SECHS": "sechs", "SIEBEN": "sieben",
           "ACHT": "acht", "NEUN": "neun", "ZEHN": "zehn", "VIELE": "viele", "EINIGE": "einige"}
DECLINED_NUMBERS = ("VIELE", "EINIGE")  # take the dative -n
ADVERBS = {"GERN": "gern", "SCHNELL": "schnell", "LANGSAM": "langsam", "ZUSAMMEN": "zusammen",
           "ALLEIN": "allein", "WIEDER": "wieder", "OFT": "oft", "SELTEN": "selten", "IMMER": "immer",
           "LEIDER": "leider", "VIELLEICHT": "vielleicht", "SICHER": "sicher", "ENDLICH": "endlich",
           "HEIMLICH": "heimlich"}
IX, NEG, QUESTION = "IX", "NICHT", "FRAGE"

SIGN_VOCABULARY: Tuple[str, ...] = tuple(
    list(TIMES) + list(PRONOUNS) + list(NOUNS) + list(ADJECTIVES) + list(VERBS) + list(MODALS) + list(NUMBERS)
    + list(ADVERBS) + [IX, NEG, QUESTION])
if len(set(SIGN_VOCABULARY)) != len(SIGN_VOCABULARY):
    raise ValueError("hard_language.py: a sign name is used twice in the lexicon")
MODIFIERS = tuple(s for s, n in NOUNS.items() if n.compound)

# --------------------------------------------------------------------------- morphology

DEF = {"nom": {"m": "der", "f": "die", "n": "das", "pl": "die"},
       "acc": {"m": "den", "f": "die", "n": "das", "pl": "die"},
       "dat": {"m": "dem", "f": "der", "n": "dem", "pl": "den"}}
INDEF = {"nom": {"m": "ein", "f": "eine", "n": "ein"},
         "acc": {"m": "einen", "f": "eine", "n": "ein"},
         "dat": {"m": "einem", "f": "einer", "n": "einem"}}
WEAK_ENDING = {"nom": {"m": "e", "f": "e", "n": "e"}, "acc": {"m": "en", "f": "e", "n": "e"},
               "dat": {"m": "en", "f": "en", "n": "en"}}
MIXED_ENDING = {"nom": {"m": "er", "f": "e", "n": "es"}, "acc": {"m": "en", "f": "e", "n": "es"},
                "dat": {"m": "en", "f": "en", "n": "en"}}
CONTRACTIONS = {("in", "dem"): "im", ("an", "dem"): "am", ("zu", "dem"): "zum", ("zu", "der"): "zur",
                ("in", "das"): "ins", ("an", "das"): "ans"}


def _stem(base: str) -> str:
    return base[:-1] if base.endswith(("ern", "eln")) else base[:-2]


def _needs_e(stem: str) -> bool:
    return stem.endswith(("t", "d", "chn", "ffn", "gn", "dm", "tm"))


def conjugate(verb: Verb, person: int) -> str:
    """Present tense of ``verb`` (without its separable particle) for person 0..5."""
    stem = _stem(verb.base)
    sibilant = stem.endswith(("s", "ß", "z", "x"))
    if person == 0:
        return stem + "e"
    if person in (3, 5):
        return verb.base
    if person == 4:
        return stem + ("et" if _needs_e(stem) else "t")
    if verb.third:
        if person == 2:
            return verb.third
        s3 = verb.third[:-1]
        return s3 + ("t" if s3.endswith(("s", "ß", "z", "x")) else "st")
    if _needs_e(stem):
        return stem + ("est" if person == 1 else "et")
    return stem + ("t" if person == 2 or sibilant else "st")


def infinitive(verb: Verb) -> str:
    return verb.particle + verb.base


@dataclass
class NP:
    """A signed noun phrase: [modifier] noun [adjective] [number] [IX]."""
    noun: str
    modifier: str = ""
    adjective: str = ""
    number: str = ""
    definite: bool = False

    def signs(self) -> List[str]:
        return [s for s in (self.modifier, self.noun, self.adjective, self.number) if s] + ([IX] if self.definite else [])


def noun_form(np_: NP, case: str) -> str:
    n = NOUNS[np_.noun]
    prefix = NOUNS[np_.modifier].compound if np_.modifier else ""
    if np_.number:
        form = n.plural
        if case == "dat" and not form.endswith(("n", "s")):
            form += "n"
    elif n.weak and case != "nom":
        form = n.plural
    else:
        form = n.lemma
    return prefix + form


def realise_np(np_: NP, case: str, negated: bool = False) -> List[str]:
    """German words of a noun phrase in ``case``; ``negated`` turns an indefinite article into "kein"."""
    n = NOUNS[np_.noun]
    plural = bool(np_.number)
    g = "pl" if plural else n.gender
    words = []
    if np_.definite:
        words.append(DEF[case][g])
        ending = "en" if plural else WEAK_ENDING[case][g]
    elif plural:
        ending = "en" if case == "dat" else "e"
    else:
        words.append(("k" if negated else "") + INDEF[case][g])
        ending = MIXED_ENDING[case][g]
    if np_.number:
        word = NUMBERS[np_.number]
        words.append(word + ("n" if case == "dat" and np_.number in DECLINED_NUMBERS else ""))
    if np_.adjective:
        adj = ADJECTIVE_SYNONYMS.get((np_.adjective, n.cls), ADJECTIVES[np_.adjective])
        words.append(adj.stem + ending)
    words.append(noun_form(np_, case))
    return words


def place_phrase(np_: NP, direction: bool) -> List[str]:
    """Prepositional phrase of a place (always definite): "im garten", "zum bahnhof", "in die stadt"."""
    n = NOUNS[np_.noun]
    prep = n.dir if direction else n.loc
    case = "acc" if direction and prep != "zu" else "dat"
    article = DEF[case][n.gender]
    rest = [noun_form(np_, case)]
    if (prep, article) in CONTRACTIONS:
        return [CONTRACTIONS[(prep, article)]] + rest
    return [prep, article] + rest


# --------------------------------------------------------------------------- sentences


@dataclass
class Sentence:
    verb: str
    subject: object  # pronoun sign (str) or NP
    time: str = ""
    place: Optional[NP] = None
    adverb: str = ""
    dative: Optional[NP] = None
    accusative: Optional[NP] = None
    destination: Optional[NP] = None
    modal: str = ""
    negated: bool = False
    question: bool = False

    def signs(self) -> List[str]:
        out = [self.time] if self.time else []
        if self.place:
            out += self.place.signs()
        out += [self.subject] if isinstance(self.subject, str) else self.subject.signs()
        if self.adverb:
            out.append(self.adverb)
        for np_ in (self.dative, self.accusative, self.destination):
            if np_:
                out += np_.signs()
        out.append(self.verb)
        out += [s for s, on in ((self.modal, bool(self.modal)), (NEG, self.negated), (QUESTION, self.question)) if on]
        return out


def translate_sentence(s: Sentence) -> str:
    """The German sentence (lowercase words separated by single spaces)."""
    if isinstance(s.subject, str):
        subj_words, person, subj_cls = [PRONOUNS[s.subject][0]], PRONOUNS[s.subject][1], "P"
    else:
        subj_words = realise_np(s.subject, "nom")
        person, subj_cls = (5 if s.subject.number else 2), NOUNS[s.subject.noun].cls
    verb = VERB_SYNONYMS.get((s.verb, subj_cls), VERBS[s.verb])
    tense = TIMES[s.time][1] if s.time else "present"
    # the verbal bracket: finite verb (second or first) ... right bracket (last)
    if s.modal:
        forms, past = MODALS[s.modal]
        if tense == "past":
            finite = past + ("st" if person == 1 else "t" if person == 4 else "n" if person in (3, 5) else "")
        else:
            finite = forms[person]
        right = [infinitive(verb)]
    elif tense == "past":
        finite, right = AUX[verb.aux][person], [verb.participle]
    elif tense == "future":
        finite, right = AUX["werden"][person], [infinitive(verb)]
    else:
        finite, right = conjugate(verb, person), [verb.particle] if verb.particle else []
    time_words = TIMES[s.time][0].split() if s.time else []

    acc_indef_neg = bool(s.negated and s.accusative and not s.accusative.definite and not s.accusative.number)
    middle: List[str] = []
    if s.dative:
        middle += realise_np(s.dative, "dat")
    if s.negated and not s.accusative:
        middle.append("nicht")
    if s.adverb:
        middle.append(ADVERBS[s.adverb])
    if s.place:
        middle += place_phrase(s.place, direction=False)
    if s.accusative:
        middle += realise_np(s.accusative, "acc", negated=acc_indef_neg)
        if s.negated and not acc_indef_neg:
            middle.append("nicht")
    if s.destination:
        middle += place_phrase(s.destination, direction=True)

    if s.question:
        words = [finite] + subj_words + time_words + middle + right
    elif time_words:
        words = time_words + [finite] + subj_words + middle + right
    else:
        words = subj_words + [finite] + middle + right
    return " ".join(words)


# --------------------------------------------------------------------------- parsing signs back


def parse(signs: Sequence[str]) -> Sentence:
    """The :class:`Sentence` of a sign sequence (raises ValueError if it is not one).

    Noun phrases are read greedily (a noun with a compound form followed by a noun is a
    modifier); the subject is the first pronoun or person / animal noun phrase, a place noun
    phrase may precede it, an adverb may follow it, then come the verb's objects.
    """
    toks = list(signs)
    text = " ".join(toks)
    unknown = [t for t in toks if t not in SIGN_VOCABULARY]
    if unknown:
        raise ValueError(f"unknown sign(s) {unknown} in {text!r}")
    i = 0

    def peek():
        return toks[i] if i < len(toks) else None

    def take_np() -> NP:
        nonlocal i
        np_ = NP(noun="")
        if peek() in MODIFIERS and i + 1 < len(toks) and toks[i + 1] in NOUNS:
            np_.modifier = toks[i]
            i += 1
        if peek() not in NOUNS:
            raise ValueError(f"expected a noun at sign {i + 1} of {text!r}")
        np_.noun = toks[i]
        i += 1
        for attr, table in (("adjective", ADJECTIVES), ("number", NUMBERS)):
            if peek() in table:
                setattr(np_, attr, toks[i])
                i += 1
        if peek() == IX:
            np_.definite = True
            i += 1
        return np_

    s = Sentence(verb="", subject="")
    if peek() in TIMES:
        s.time = toks[i]
        i += 1
    items: List[object] = []  # pronoun / adverb signs and noun phrases before the verb
    while peek() is not None and peek() not in VERBS:
        if peek() in PRONOUNS or peek() in ADVERBS:
            items.append(toks[i])
            i += 1
        else:
            items.append(take_np())
    if peek() not in VERBS:
        raise ValueError(f"no verb in {text!r}")
    s.verb = toks[i]
    i += 1
    for attr, ok in (("modal", lambda t: t in MODALS), ("negated", lambda t: t == NEG),
                     ("question", lambda t: t == QUESTION)):
        if peek() is not None and ok(peek()):
            setattr(s, attr, toks[i] if attr == "modal" else True)
            i += 1
    if i != len(toks):
        raise ValueError(f"unexpected sign {toks[i]!r} after the verb in {text!r}")
    subj = next((k for k, x in enumerate(items)
                 if (isinstance(x, str) and x in PRONOUNS) or (isinstance(x, NP) and NOUNS[x.noun].cls in "PA")), None)
    if subj is None:
        raise ValueError(f"no subject (pronoun, person or animal) in {text!r}")
    s.subject = items[subj]
    before, after = items[:subj], items[subj + 1:]
    if len(before) > 1 or (before and not (isinstance(before[0], NP) and NOUNS[before[0].noun].cls == "L")):
        raise ValueError(f"only a place may come before the subject in {text!r}")
    s.place = before[0] if before else None
    if after and isinstance(after[0], str) and after[0] in ADVERBS:
        s.adverb = after.pop(0)
    slots = {"T": ["accusative"], "D": ["dative"], "DT": ["dative", "accusative"], "I": [],
             "M": ["destination"]}[VERBS[s.verb].frame]
    if not all(isinstance(x, NP) for x in after) or len(after) > len(slots) \
            or (VERBS[s.verb].frame != "M" and len(after) < len(slots)):
        raise ValueError(f"verb {s.verb} takes {len(slots)} object noun phrase(s): {text!r}")
    for slot, np_ in zip(slots, after):
        setattr(s, slot, np_)
    return s


def translate(signs: Sequence[str]) -> str:
    """German sentence of a sign sequence."""
    return translate_sentence(parse(signs))


# --------------------------------------------------------------------------- sampling

MIN_SIGNS, MAX_SIGNS = 5, 12


class _Choices:
    """Signs available to the sampler (all, or those of a subset)."""

    def __init__(self, allowed: Optional[FrozenSet[str]]):
        ok = (lambda s: True) if allowed is None else (lambda s: s in allowed)
        self.ok = ok
        self.times = [s for s in TIMES if ok(s)]
        self.pronouns = [s for s in PRONOUNS if ok(s)]
        self.nouns = {c: [s for s, n in NOUNS.items() if n.cls == c and ok(s)] for c in "PAFDROL"}
        self.adjectives = {c: [s for s, a in ADJECTIVES.items() if c in a.applies and ok(s)] for c in "PAFDROL"}
        self.modifiers = [s for s in MODIFIERS if ok(s)]
        self.verbs = [s for s in VERBS if ok(s)]
        self.modals = [s for s in MODALS if ok(s)]
        self.numbers = [s for s in NUMBERS if ok(s)]
        self.adverbs = [s for s in ADVERBS if ok(s)]


def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))] if items else None


def _np(rng, ch: _Choices, classes: str, p_mod=0.35, p_adj=0.45, p_num=0.25, p_ix=0.5) -> Optional[NP]:
    cls = _pick(rng, [c for c in classes if ch.nouns[c]])
    if cls is None:
        return None
    np_ = NP(noun=_pick(rng, ch.nouns[cls]))
    if cls in COMPOUND_HEADS and rng.random() < p_mod:
        np_.modifier = _pick(rng, [m for m in ch.modifiers if m != np_.noun]) or ""
    if rng.random() < p_adj:
        np_.adjective = _pick(rng, ch.adjectives[cls]) or ""
    if rng.random() < p_num:
        np_.number = _pick(rng, ch.numbers) or ""
    # "die viele ..." is not German: VIELE / EINIGE stand for the article
    np_.definite = bool(ch.ok(IX) and np_.number not in DECLINED_NUMBERS and rng.random() < p_ix)
    return np_


def _place(rng, ch: _Choices) -> Optional[NP]:
    """A place: a place noun, sometimes a compound ("stadtpark"); always definite in German, no IX."""
    return _np(rng, ch, "L", p_mod=0.3, p_adj=0.0, p_num=0.0, p_ix=0.0)


def _draw(rng: np.random.Generator, ch: _Choices) -> Optional[Sentence]:
    verb = _pick(rng, ch.verbs)
    if verb is None:
        return None
    v = VERBS[verb]
    s = Sentence(verb=verb, subject="")
    if rng.random() < 0.3 and ch.pronouns:
        s.subject = _pick(rng, ch.pronouns)
    else:
        # animals are subjects of a few verbs only
        s.subject = _np(rng, ch, "PA" if verb in ("ESSEN", "TRINKEN", "SCHLAFEN", "LAUFEN", "SCHWIMMEN",
                                                  "SPIELEN", "FOLGEN", "SEHEN", "SUCHEN", "FINDEN") else "P",
                        p_num=0.2)
        if s.subject is None:
            return None
    if rng.random() < 0.85:
        s.time = _pick(rng, ch.times) or ""
    if rng.random() < (0.5 if v.frame in "IM" else 0.25):
        s.place = _place(rng, ch)
    if rng.random() < 0.25:
        s.adverb = _pick(rng, ch.adverbs) or ""
    if v.frame in ("D", "DT"):
        s.dative = _np(rng, ch, "P" if v.frame == "DT" else v.objects, p_num=0.15)
        if s.dative is None:
            return None
    if v.frame in ("T", "DT"):
        s.accusative = _np(rng, ch, v.objects)
        if s.accusative is None:
            return None
    if v.frame == "M" and rng.random() < 0.8:
        s.destination = _place(rng, ch)
    if rng.random() < 0.25:
        s.modal = _pick(rng, ch.modals) or ""
    s.negated = bool(ch.ok(NEG) and rng.random() < 0.2 and not (s.accusative and s.accusative.number))
    s.question = bool(ch.ok(QUESTION) and rng.random() < 0.15)
    return s


def sample_sentence(rng: np.random.Generator, allowed: Optional[FrozenSet[str]] = None,
                    must: Optional[str] = None, tries: int = 20000) -> Tuple[str, ...]:
    """A sign sequence of :data:`MIN_SIGNS`-:data:`MAX_SIGNS` signs, using only ``allowed`` signs
    (all if None) and containing ``must`` (if given). Raises ValueError after ``tries`` draws."""
    ch = _Choices(allowed)
    for _ in range(tries):
        s = _draw(rng, ch)
        if s is None:
            continue
        signs = tuple(s.signs())
        try:
            if parse(signs) != s:  # ambiguous (e.g. a noun read as the modifier of the next): draw again
                continue
        except ValueError:  # e.g. a place object read as the place before the subject
            continue
        if MIN_SIGNS <= len(signs) <= MAX_SIGNS and (must is None or must in signs):
            return signs
    what = f" containing {must}" if must else ""
    raise ValueError(f"no sentence of {MIN_SIGNS}-{MAX_SIGNS} signs{what} could be drawn from "
                     f"{'all' if allowed is None else len(allowed)} signs in {tries} tries")
