"""Deterministic multilingual training corpus for the test tokenizer.

Python: Debian's /usr/bin/python3 (3.11), standard library only.

The corpus mixes English, accented French and German, some Japanese and
Chinese, digits and a few emoji. Frequent characters (é, ü, 日, ...) appear
thousands of times so the BPE trainer keeps them as single pieces; the emoji
and a handful of rare CJK characters appear only a few times so that, under
the trainer's character_coverage, they fall back to <0xNN> byte pieces.
"""

import random

ENGLISH_SUBJECTS = [
    "The model", "A small cat", "Every server", "The old teacher", "My friend",
    "This recurrent state", "The quick brown fox", "Our test", "The linear layer",
    "A tired student", "The river", "Each token",
]
ENGLISH_VERBS = [
    "reads", "writes", "remembers", "forgets", "jumps over", "computes",
    "decays", "returns", "predicts", "follows", "streams", "loads",
]
ENGLISH_OBJECTS = [
    "the lazy dog", "a long sentence", "the next token", "every number",
    "the hidden state", "an empty string", "the whole conversation",
    "a bright morning", "the golden values", "three small models",
]
ENGLISH_TAILS = [
    ".", " today.", " again.", " without a pause.", " in the evening.",
    " with great care.", "!", "?", " before lunch.", " every single time.",
]

FRENCH = [
    "Le café est très chaud ce matin.",
    "Élise a déjà mangé à la maison.",
    "Où est la bibliothèque, s'il vous plaît ?",
    "Nous étions à Genève l'été dernier.",
    "Le garçon préfère la crème brûlée.",
    "Ça dépend de la météo et de la fenêtre.",
    "Il faut être prêt à répondre à la question.",
    "La forêt est belle en été comme en hiver.",
    "Je préfère le thé à la menthe, c'est évident.",
    "Les élèves écrivent une dictée très difficile.",
]
GERMAN = [
    "Die Straße ist heute sehr ruhig.",
    "Über den Bergen fliegen die Vögel.",
    "Ich möchte ein großes Stück Käse.",
    "Die Größe der Tür ist ungewöhnlich.",
    "Wir fahren über München nach Zürich.",
    "Schöne Grüße aus Köln und Düsseldorf.",
    "Der Bäcker öffnet früh am Morgen.",
    "Fünf müde Hunde schlafen draußen.",
    "Das Mädchen hört gern schöne Musik.",
    "Es ist heiß, also trinken wir Wasser.",
]
JAPANESE = [
    "日本語の文章です。",
    "今日は天気がいいです。",
    "私は日本の大学で勉強しています。",
    "東京は大きい都市です。",
    "この本はとても面白いです。",
    "明日は雨が降るでしょう。",
    "日本人は毎日お茶を飲みます。",
    "山の上に小さい家があります。",
]
CHINESE = [
    "我们今天学习中文。",
    "中国人喜欢喝茶。",
    "这是一个很好的问题。",
    "他在大学学习数学。",
    "北京是中国的首都。",
    "我的朋友明天来。",
    "天气很好，我们去公园。",
    "这个人很高兴。",
]
# Appear a handful of times in the whole corpus: below the character coverage.
RARE = [
    "Rare: 龘 and 齉 appear here.",
    "Party time 🎉 with friends 😀.",
    "Weather ☃ and ⛄ today.",
    "Rocket 🚀 launch at noon.",
]


def _english(rng):
    return (rng.choice(ENGLISH_SUBJECTS) + " " + rng.choice(ENGLISH_VERBS) + " "
            + rng.choice(ENGLISH_OBJECTS) + rng.choice(ENGLISH_TAILS))


def _numbers(rng):
    return "Order %d costs %d.%02d euros on day %d." % (
        rng.randrange(1, 100000), rng.randrange(1, 1000), rng.randrange(100),
        rng.randrange(1, 32))


def corpus_lines(seed=1234, n_lines=3000):
    """Returns the corpus as a list of lines (no newlines inside a line)."""
    rng = random.Random(seed)
    lines = []
    for i in range(n_lines):
        r = rng.random()
        if r < 0.40:
            line = _english(rng)
            if rng.random() < 0.3:
                line += " " + _english(rng)
        elif r < 0.55:
            line = rng.choice(FRENCH)
        elif r < 0.70:
            line = rng.choice(GERMAN)
        elif r < 0.80:
            line = rng.choice(JAPANESE)
        elif r < 0.90:
            line = rng.choice(CHINESE)
        else:
            line = _numbers(rng)
        # A few indented lines and double spaces so whitespace pieces exist.
        if rng.random() < 0.05:
            line = "    " + line
        if rng.random() < 0.05:
            line = line.replace(" ", "  ", 1)
        lines.append(line)
    # The rare lines, once each, at fixed places.
    for j, line in enumerate(RARE):
        lines.insert((j + 1) * (len(lines) // (len(RARE) + 1)), line)
    return lines
