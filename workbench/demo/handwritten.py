"""Handwritten explanatory examples for the demo dataset, written for this project.

Short, plain-English questions and answers on everyday and general-knowledge topics. They have
no single exact answer, so `demo_data.verify` does not apply to them; their `answer` field is the
last assistant message.
"""

from __future__ import annotations

HANDWRITTEN_TASK = "handwritten"

QA: list[tuple[str, str]] = [
    (
        "Explain what a prime number is.",
        "A prime number is a whole number greater than 1 whose only divisors are 1 and itself. "
        "For example, 2, 3, 5, 7 and 11 are prime, while 9 is not because it equals 3 times 3.",
    ),
    (
        "Why is the sky blue?",
        "Sunlight contains all colours, and as it passes through the air, gas molecules scatter "
        "short blue wavelengths much more strongly than long red ones. This scattered blue light "
        "reaches our eyes from every part of the sky, so the sky looks blue.",
    ),
    (
        "Give three tips for writing a clear email.",
        "Use a specific subject line so the reader knows what the email is about. Put your main "
        "point or request in the first two sentences. Keep paragraphs short and end with any "
        "action or deadline you need.",
    ),
    (
        "What causes the seasons on Earth?",
        "The seasons are caused by the tilt of Earth's axis, about 23.5 degrees. As Earth orbits "
        "the Sun, each hemisphere in turn leans toward the Sun and gets more direct sunlight and "
        "longer days, which is its summer. The changing distance to the Sun is not the main cause.",
    ),
    (
        "What is photosynthesis?",
        "Photosynthesis is the process plants, algae and some bacteria use to turn light energy "
        "into chemical energy. Using sunlight, they take in carbon dioxide and water, make sugar, "
        "and release oxygen.",
    ),
    (
        "How does a refrigerator keep food cold?",
        "A refrigerator pumps a refrigerant around a closed loop. The refrigerant evaporates in "
        "coils inside the fridge, absorbing heat, and is then compressed and condensed in coils "
        "outside, where it gives that heat off into the room.",
    ),
    (
        "What is the difference between weather and climate?",
        "Weather is the state of the atmosphere over hours or days, such as today's rain. Climate "
        "is the average pattern of weather in a place over many years, usually thirty or more.",
    ),
    (
        "Why do we need to drink water?",
        "Water makes up more than half of the body and is needed to carry nutrients, control body "
        "temperature through sweat, and remove waste. We lose water all the time through "
        "breathing, sweat and urine, so we have to replace it by drinking and eating.",
    ),
    (
        "Explain what a budget is.",
        "A budget is a plan for how you will spend and save money over a period, such as a month. "
        "It lists expected income and expenses so you can check that you live within your means "
        "and set money aside for your goals.",
    ),
    (
        "What is the boiling point of water?",
        "At sea level, pure water boils at 100 degrees Celsius, which is 212 degrees Fahrenheit. "
        "Higher up, the air pressure is lower, so water boils at a lower temperature.",
    ),
    (
        "Give three tips for getting a good night's sleep.",
        "Go to bed and wake up at about the same time every day. Avoid caffeine in the afternoon "
        "and bright screens in the hour before bed. Keep your bedroom dark, quiet and cool.",
    ),
    (
        "What does a noun do in a sentence?",
        'A noun names a person, place, thing or idea, such as "teacher", "Paris", "chair" or '
        '"freedom". Nouns often act as the subject of a sentence or as the object of a verb.',
    ),
    (
        "Why do leaves change colour in autumn?",
        "Leaves are green because of chlorophyll, which captures sunlight. In autumn, as days "
        "shorten and it gets colder, trees stop making chlorophyll, so the yellow and orange "
        "pigments already in the leaf show through, and some trees also make red ones.",
    ),
    (
        "What is the difference between a virus and a bacterium?",
        "Bacteria are single-celled living organisms that can reproduce on their own, and many "
        "bacterial infections can be treated with antibiotics. Viruses are much smaller, can only "
        "reproduce inside the cells of a host, and are not affected by antibiotics.",
    ),
    (
        "Explain what the mean of a set of numbers is.",
        "The mean is found by adding up all the values and dividing by how many values there are. "
        "For example, the mean of 2, 4 and 9 is 15 divided by 3, which is 5.",
    ),
    (
        "How does a rainbow form?",
        "Sunlight enters raindrops, bends, reflects off the back of each drop and bends again as "
        "it leaves. Each colour bends by a slightly different amount, so white light spreads into "
        "a band of colours. You see a rainbow when the Sun is behind you and rain is in front.",
    ),
    (
        "What is a password manager for?",
        "A password manager stores your passwords in an encrypted vault protected by one main "
        "password. It lets you use a long, unique password for every site without remembering "
        "them all, which limits the damage if one site is breached.",
    ),
    (
        "Give three tips for saving money on groceries.",
        "Plan meals for the week and shop with a list. Compare the price per kilogram or per item "
        "rather than per package. Avoid shopping when you are hungry.",
    ),
    (
        "Why does ice float on water?",
        "Ice is less dense than liquid water. When water freezes, its molecules lock into an open "
        "crystal pattern that takes up about 9 percent more space, so ice weighs less than the "
        "same volume of liquid water.",
    ),
    (
        "What is gravity?",
        "Gravity is the force by which objects with mass attract one another. It keeps us on the "
        "ground, makes dropped objects fall, and holds the Moon in orbit around Earth.",
    ),
    (
        "Explain what a verb is.",
        'A verb is a word that describes an action, state or occurrence, such as "run", "be" or '
        '"happen". Every complete sentence has at least one verb.',
    ),
    (
        "What is the water cycle?",
        "The water cycle is the continuous movement of water on Earth. Water evaporates from seas "
        "and lakes, condenses into clouds, falls as rain or snow, and flows back through rivers "
        "and groundwater to the sea.",
    ),
    (
        "How do vaccines work?",
        "A vaccine shows the immune system a harmless piece or weakened form of a germ. The body "
        "makes antibodies and memory cells, so if the real germ arrives later, the immune system "
        "recognises it and responds quickly.",
    ),
    (
        "Give three tips for a job interview.",
        "Research the company and the role before you go. Prepare short examples from your "
        "experience that show the skills the job needs. Arrive a few minutes early with one or "
        "two questions ready for the interviewer.",
    ),
    (
        "What is the difference between speed and velocity?",
        "Speed is how fast something moves, such as 50 kilometres per hour. Velocity is speed in "
        "a given direction, such as 50 kilometres per hour heading north.",
    ),
    (
        "Why do we have leap years?",
        "Earth takes about 365.24 days to orbit the Sun, not exactly 365. Adding an extra day, "
        "February 29, in most years divisible by four keeps the calendar in step with the seasons.",
    ),
    (
        "What is a fraction?",
        "A fraction describes part of a whole, written as one number over another. The bottom "
        "number says how many equal parts the whole is split into and the top number how many of "
        "those parts you have, so 3/4 means three of four equal parts.",
    ),
    (
        "Explain what compound interest is.",
        "Compound interest is interest earned on both the original amount and the interest "
        "already added. For example, 100 dollars at 10 percent a year grows to 110 after one year "
        "and 121 after two.",
    ),
    (
        "How can I make a presentation more engaging?",
        "Open with a question, story or surprising fact that shows why the topic matters. Use "
        "slides with few words and clear pictures, and talk to the audience instead of reading. "
        "Finish with a short summary of the key points.",
    ),
    (
        "What do bees do for flowers?",
        "As bees collect nectar and pollen, pollen sticks to their bodies and is carried from "
        "flower to flower. This pollination lets many plants make seeds and fruit, including many "
        "crops that people eat.",
    ),
    (
        "Why is exercise good for you?",
        "Regular exercise strengthens the heart, lungs, muscles and bones, and helps control "
        "weight and blood pressure. It also improves mood and sleep and lowers the risk of "
        "diseases such as type 2 diabetes.",
    ),
    (
        "What is the difference between an ocean and a sea?",
        "Oceans are the largest bodies of salt water, such as the Pacific and the Atlantic. Seas "
        "are smaller and usually partly enclosed by land, like the Mediterranean Sea.",
    ),
    (
        "Explain what a percentage is.",
        "A percentage is a number expressed as a part of 100. For example, 25 percent means 25 "
        "out of every 100, which is the same as one quarter.",
    ),
    (
        "How do magnets work?",
        "A magnet has a north and a south pole and produces a magnetic field around it. Opposite "
        "poles attract and like poles repel, and magnets also attract some metals, such as iron.",
    ),
    (
        "Give three tips for remembering what you study.",
        "Test yourself instead of just rereading your notes. Spread your study over several short "
        "sessions rather than one long one. Explain the material in your own words, as if "
        "teaching someone else.",
    ),
    (
        "What is the Moon made of?",
        "The Moon is made mostly of rock. It has a rocky crust and mantle and a small iron-rich "
        "core, and its surface is covered in dust and broken rock.",
    ),
    (
        "Why do we see lightning before we hear thunder?",
        "Light travels about 300,000 kilometres per second, while sound travels only about 343 "
        "metres per second in air. The flash reaches you almost at once and the thunder later; "
        "about three seconds of delay means the storm is roughly one kilometre away.",
    ),
    (
        "What is a synonym?",
        "A synonym is a word that means the same or nearly the same as another word. For example, "
        '"big" and "large" are synonyms.',
    ),
]

# Two-turn conversations: user, assistant, user, assistant.
DIALOGUES: list[tuple[str, str, str, str]] = [
    (
        "What is a mammal?",
        "A mammal is a warm-blooded animal with hair or fur that feeds its young with milk. Dogs, "
        "whales and humans are all mammals.",
        "Is a bat a mammal?",
        "Yes. Bats have fur and feed their young with milk, and they are the only mammals that "
        "can truly fly.",
    ),
    (
        "How many days are in a week?",
        "There are seven days in a week.",
        "And how many weeks are in a year?",
        "A year has 52 weeks and one extra day, or two extra days in a leap year.",
    ),
    (
        "What is the largest planet in our solar system?",
        "Jupiter is the largest planet in our solar system. It is a gas giant about 11 times "
        "wider than Earth.",
        "Which planet is closest to the Sun?",
        "Mercury is the planet closest to the Sun.",
    ),
    (
        "Can you suggest a healthy breakfast?",
        "Porridge made with oats and topped with fruit and a few nuts is a healthy breakfast. It "
        "gives you fibre, vitamins and steady energy.",
        "What if I have no time to cook?",
        "Try plain yogurt with fruit, or wholegrain toast with peanut butter and a banana; both "
        "take under five minutes.",
    ),
]

# Single exchanges that open with a system message: system, user, assistant.
WITH_SYSTEM: list[tuple[str, str, str]] = [
    (
        "You are a friendly tutor who explains things simply.",
        "What is an atom?",
        "An atom is the tiny basic building block of all matter. It has a centre called the "
        "nucleus, made of protons and neutrons, with electrons moving around it.",
    ),
    (
        "You are a concise assistant. Answer in one sentence.",
        "What does a thermometer measure?",
        "A thermometer measures temperature.",
    ),
    (
        "You are a helpful writing assistant.",
        "How do I write a good topic sentence?",
        "State the main idea of the paragraph in one clear sentence near its start. Make it "
        "specific enough that every other sentence in the paragraph supports it.",
    ),
]


def handwritten_rows() -> list[dict]:
    """Fresh copies of every handwritten example as canonical chat rows, in a fixed order."""
    conversations = [[("user", q), ("assistant", a)] for q, a in QA]
    conversations += [
        [("user", q1), ("assistant", a1), ("user", q2), ("assistant", a2)]
        for q1, a1, q2, a2 in DIALOGUES
    ]
    conversations += [[("system", s), ("user", q), ("assistant", a)] for s, q, a in WITH_SYSTEM]
    return [_row(turns) for turns in conversations]


def _row(turns: list[tuple[str, str]]) -> dict:
    messages = [{"role": role, "content": content} for role, content in turns]
    return {"messages": messages, "task": HANDWRITTEN_TASK, "answer": messages[-1]["content"]}
