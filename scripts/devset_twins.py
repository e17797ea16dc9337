"""The multilingual twins: for these 50 pictures (5 per category) the description is also spoken in Spanish,
German and Mandarin. Written by hand for this table; English label names stay the labels.
"""

from __future__ import annotations

# item id -> (Spanish, German, Mandarin Chinese) for the English description of that picture.
TRANSLATIONS: dict[str, tuple[str, str, str]] = {
    # animals
    "gcompris:lang:dog": ("Un perro.", "Ein Hund.", "一只狗。"),
    "gcompris:lang:cat": ("Un gato.", "Eine Katze.", "一只猫。"),
    "gcompris:lang:horse": ("Un caballo.", "Ein Pferd.", "一匹马。"),
    "gcompris:lang:cow": ("Una vaca.", "Eine Kuh.", "一头奶牛。"),
    "gcompris:lang:rabbit": ("Un conejo.", "Ein Kaninchen.", "一只兔子。"),
    # food
    "gcompris:lang:apple": ("Una manzana.", "Ein Apfel.", "一个苹果。"),
    "gcompris:lang:strawberry": ("Una fresa.", "Eine Erdbeere.", "一颗草莓。"),
    "gcompris:lang:lemon": ("Un limón.", "Eine Zitrone.", "一个柠檬。"),
    "emoji:bread": ("Un pan.", "Ein Brot.", "一个面包。"),
    "emoji:pizza": ("Una pizza.", "Eine Pizza.", "一个披萨。"),
    # plants
    "emoji:sunflower": ("Un girasol.", "Eine Sonnenblume.", "一朵向日葵。"),
    "emoji:rose": ("Una rosa.", "Eine Rose.", "一朵玫瑰。"),
    "emoji:cactus": ("Un cactus.", "Ein Kaktus.", "一株仙人掌。"),
    "emoji:palm tree": ("Una palmera.", "Eine Palme.", "一棵棕榈树。"),
    "emoji:tulip": ("Un tulipán.", "Eine Tulpe.", "一朵郁金香。"),
    # vehicles
    "emoji:bicycle": ("Una bicicleta.", "Ein Fahrrad.", "一辆自行车。"),
    "emoji:bus": ("Un autobús.", "Ein Bus.", "一辆公共汽车。"),
    "emoji:airplane": ("Un avión.", "Ein Flugzeug.", "一架飞机。"),
    "emoji:sailboat": ("Un velero.", "Ein Segelboot.", "一艘帆船。"),
    "emoji:tractor": ("Un tractor.", "Ein Traktor.", "一辆拖拉机。"),
    # clothes
    "emoji:t-shirt": ("Una camiseta.", "Ein T-Shirt.", "一件T恤。"),
    "emoji:dress": ("Un vestido.", "Ein Kleid.", "一条连衣裙。"),
    "emoji:socks": ("Calcetines.", "Socken.", "袜子。"),
    "emoji:scarf": ("Una bufanda.", "Ein Schal.", "一条围巾。"),
    "emoji:gloves": ("Guantes.", "Handschuhe.", "手套。"),
    # tools
    "gcompris:categorization:hammer1": ("Un martillo.", "Ein Hammer.", "一把锤子。"),
    "gcompris:categorization:screwDriver": ("Un destornillador.", "Ein Schraubenzieher.", "一把螺丝刀。"),
    "gcompris:categorization:measuringTape1": ("Una cinta métrica.", "Ein Maßband.", "一个卷尺。"),
    "gcompris:categorization:scissors1": ("Unas tijeras.", "Eine Schere.", "一把剪刀。"),
    "gcompris:categorization:wrench": ("Una llave inglesa.", "Ein Schraubenschlüssel.", "一把扳手。"),
    # buildings
    "gcompris:categorization:eiffelTower": ("La Torre Eiffel.", "Der Eiffelturm.", "埃菲尔铁塔。"),
    "gcompris:categorization:colosseum": ("El Coliseo.", "Das Kolosseum.", "罗马斗兽场。"),
    "gcompris:categorization:tajMahal": ("El Taj Mahal.", "Das Taj Mahal.", "泰姬陵。"),
    "emoji:house": ("Una casa.", "Ein Haus.", "一座房子。"),
    "emoji:castle": ("Un castillo.", "Eine Burg.", "一座城堡。"),
    # sports
    "gcompris:categorization:volleyball": ("Un balón de voleibol.", "Ein Volleyball.", "一个排球。"),
    "gcompris:categorization:baseball": ("Una pelota de béisbol.", "Ein Baseball.", "一个棒球。"),
    "emoji:soccer ball": ("Un balón de fútbol.", "Ein Fußball.", "一个足球。"),
    "emoji:basketball": ("Un balón de baloncesto.", "Ein Basketball.", "一个篮球。"),
    "emoji:tennis": ("Una pelota de tenis.", "Ein Tennisball.", "一个网球。"),
    # music
    "emoji:guitar": ("Una guitarra.", "Eine Gitarre.", "一把吉他。"),
    "emoji:violin": ("Un violín.", "Eine Geige.", "一把小提琴。"),
    "emoji:trumpet": ("Una trompeta.", "Eine Trompete.", "一把小号。"),
    "emoji:drum": ("Un tambor.", "Eine Trommel.", "一面鼓。"),
    "emoji:saxophone": ("Un saxofón.", "Ein Saxophon.", "一把萨克斯管。"),
    # household objects
    "gcompris:categorization:chair": ("Una silla.", "Ein Stuhl.", "一把椅子。"),
    "gcompris:categorization:cup": ("Una taza.", "Eine Tasse.", "一个杯子。"),
    "gcompris:categorization:pillow": ("Una almohada.", "Ein Kissen.", "一个枕头。"),
    "gcompris:categorization:bucket": ("Un cubo.", "Ein Eimer.", "一个水桶。"),
    "emoji:bed": ("Una cama.", "Ein Bett.", "一张床。"),
}

TWIN_LANGUAGES = ("es", "de", "zh")  # in the order of the tuples above
