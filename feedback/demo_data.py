"""Demo data for trying out the feedback collection workflow.

The corpus, questions and answers below are invented examples. They exist so that
annotators and developers can exercise the review screens without real user data.
"""

from typing import Any

DEMO_CORPUS: list[dict[str, str]] = [
    {
        "id": "doc-01",
        "title": "Cooking rice on the stove",
        "text": (
            "For plain white rice, rinse the grains in cold water until it runs almost clear, "
            "which removes loose starch and keeps the rice from turning gluey. "
            "A common ratio is one part rice to one and a half parts water by volume. "
            "Bring the pot to a boil, cover it, lower the heat to the minimum and cook for "
            "about fifteen minutes. "
            "Leave the lid on for another ten minutes off the heat so the steam can finish "
            "the job, then fluff the rice with a fork."
        ),
        "url": "https://docs.example.org/cooking-rice-stove",
    },
    {
        "id": "doc-02",
        "title": "Boiling eggs to the right doneness",
        "text": (
            "Lower eggs straight from the fridge into water that is already at a gentle boil. "
            "Six minutes gives a runny yolk, eight minutes a jammy one and eleven minutes "
            "a fully firm yolk for large eggs. "
            "When the time is up, move the eggs into a bowl of cold water to stop the cooking. "
            "Eggs that are a week or two old are usually easier to peel than very fresh ones."
        ),
        "url": "https://docs.example.org/boiling-eggs",
    },
    {
        "id": "doc-03",
        "title": "Storing leftovers safely",
        "text": (
            "Cooked food should go into the fridge within two hours of cooking, or within one "
            "hour on a very hot day. "
            "Shallow containers help leftovers cool quickly and evenly. "
            "Most cooked leftovers keep for three to four days in a fridge set at or below "
            "five degrees Celsius. "
            "When reheating, make sure the food is steaming hot all the way through, and "
            "avoid reheating the same portion more than once."
        ),
        "url": "https://docs.example.org/storing-leftovers",
    },
    {
        "id": "doc-04",
        "title": "Seasoning food while you cook",
        "text": (
            "Salt works best when added in small amounts throughout cooking rather than all at "
            "the end. "
            "Taste the dish at each stage, for example after the onions soften and again "
            "before serving. "
            "A squeeze of lemon juice or a splash of vinegar can brighten a dish that tastes "
            "flat even when it has enough salt. "
            "Dried herbs go in early so they can soften, while fresh leafy herbs are usually "
            "added just before serving."
        ),
        "url": "https://docs.example.org/seasoning-basics",
    },
    {
        "id": "doc-05",
        "title": "Fixing a flat bicycle tyre",
        "text": (
            "To fix a flat, remove the wheel and use tyre levers to ease one side of the tyre "
            "off the rim. "
            "Pull out the inner tube, pump a little air into it and listen or feel for the "
            "leak. "
            "Before fitting a patch or a new tube, run your fingers carefully around the "
            "inside of the tyre to find any thorn or glass that caused the puncture. "
            "Seat the tube evenly, push the tyre back on by hand and inflate it to the "
            "pressure printed on the sidewall."
        ),
        "url": "https://docs.example.org/bike-flat-tyre",
    },
    {
        "id": "doc-06",
        "title": "Cleaning and lubricating a bike chain",
        "text": (
            "A dirty chain wears out the gears faster and makes shifting noisy. "
            "Wipe the chain with a rag while turning the pedals backwards, and use a "
            "degreaser if it is caked with grime. "
            "Once it is dry, apply one drop of chain lubricant to each roller, then wipe off "
            "the excess so it does not attract dirt. "
            "Riders in wet weather may need to do this every week, while dry-weather riders "
            "can often wait a month."
        ),
        "url": "https://docs.example.org/bike-chain-care",
    },
    {
        "id": "doc-07",
        "title": "Checking bicycle brakes",
        "text": (
            "Squeeze each brake lever firmly; it should stop well before touching the "
            "handlebar. "
            "Rim brake pads should meet the rim squarely and have visible grooves, so replace "
            "them once the grooves are worn away. "
            "Disc brakes that squeal or feel weak may have contaminated pads, which often need "
            "replacing rather than cleaning. "
            "If you are unsure about adjusting cable tension, a bike shop can do a brake check "
            "quickly and cheaply."
        ),
        "url": "https://docs.example.org/bike-brake-check",
    },
    {
        "id": "doc-08",
        "title": "Watering houseplants",
        "text": (
            "Overwatering kills more houseplants than underwatering does. "
            "For most common plants, push a finger about two centimetres into the soil and "
            "water only when it feels dry at that depth. "
            "Water thoroughly until some drains from the bottom of the pot, then empty the "
            "saucer so the roots do not sit in water. "
            "Plants need less water in winter, when growth slows and evaporation is lower."
        ),
        "url": "https://docs.example.org/houseplant-watering",
    },
    {
        "id": "doc-09",
        "title": "Light needs of indoor plants",
        "text": (
            "Plants described as needing bright indirect light do well a metre or two from a "
            "sunny window, out of the direct midday rays. "
            "Succulents and cacti usually want several hours of direct sun each day. "
            "Leggy stems that stretch toward the window are a sign that a plant needs more "
            "light. "
            "Pale or scorched patches on leaves can mean the opposite, that the plant is "
            "getting too much direct sun."
        ),
        "url": "https://docs.example.org/houseplant-light",
    },
    {
        "id": "doc-10",
        "title": "Yellow leaves on houseplants",
        "text": (
            "Yellowing leaves are a symptom with several possible causes, so look at the whole "
            "plant before acting. "
            "Soft yellow leaves together with damp soil usually point to overwatering or poor "
            "drainage. "
            "Crispy yellow or brown edges with dry soil suggest the plant is too dry or the "
            "air is very dry. "
            "A single old leaf at the bottom turning yellow is often normal ageing and "
            "nothing to worry about."
        ),
        "url": "https://docs.example.org/houseplant-yellow-leaves",
    },
    {
        "id": "doc-11",
        "title": "Building a monthly budget",
        "text": (
            "Start a budget by writing down your monthly take-home pay, not your salary before "
            "tax. "
            "List fixed costs such as rent, utilities and loan payments, then estimate "
            "variable costs such as food and transport from the last two or three months of "
            "bank statements. "
            "One popular guideline is the 50/30/20 split: half for needs, thirty percent for "
            "wants and twenty percent for savings or debt repayment. "
            "Review the budget at the end of each month and adjust the categories that keep "
            "running over."
        ),
        "url": "https://docs.example.org/monthly-budget",
    },
    {
        "id": "doc-12",
        "title": "Setting up an emergency fund",
        "text": (
            "An emergency fund is money set aside for unexpected costs such as a broken "
            "boiler or a gap between jobs. "
            "A common target is three to six months of essential expenses, although a smaller "
            "starter goal of one month is a good first step. "
            "Keep the fund in an easy-access savings account separate from your everyday "
            "account so it is not spent by accident. "
            "Setting up an automatic transfer on payday makes saving steady without much "
            "effort."
        ),
        "url": "https://docs.example.org/emergency-fund",
    },
    {
        "id": "doc-13",
        "title": "Paying down debt",
        "text": (
            "Two common strategies for paying off several debts are the avalanche and the "
            "snowball methods. "
            "With the avalanche method you pay the minimum on everything and put any extra "
            "money toward the debt with the highest interest rate, which saves the most money "
            "overall. "
            "With the snowball method you clear the smallest balance first, which gives quick "
            "wins that help some people stay motivated. "
            "Either way, always make at least the minimum payment on every account to avoid "
            "fees."
        ),
        "url": "https://docs.example.org/paying-down-debt",
    },
    {
        "id": "doc-14",
        "title": "Spreadsheet formulas for beginners",
        "text": (
            "Every spreadsheet formula starts with an equals sign, for example =A1+B1. "
            "The SUM function adds a range of cells, so =SUM(B2:B13) totals twelve months of "
            "values. "
            "AVERAGE, MIN and MAX work the same way on a range. "
            "When you copy a formula down a column, the cell references shift automatically; "
            "put a dollar sign in front of the column or row, as in $B$1, to keep a "
            "reference fixed."
        ),
        "url": "https://docs.example.org/spreadsheet-formulas",
    },
    {
        "id": "doc-15",
        "title": "Sorting and filtering spreadsheet data",
        "text": (
            "Before sorting, select the whole table rather than a single column, otherwise the "
            "rows will be scrambled. "
            "Most spreadsheet programs let you mark the first row as a header row so it stays "
            "in place. "
            "Filters hide rows that do not match a condition without deleting them, which is "
            "useful for looking at one category at a time. "
            "Freezing the header row keeps column names visible while you scroll through long "
            "lists."
        ),
        "url": "https://docs.example.org/spreadsheet-sort-filter",
    },
    {
        "id": "doc-16",
        "title": "Looking up values in a spreadsheet",
        "text": (
            "Lookup functions find a value in one table and return related information from "
            "another column. "
            "VLOOKUP searches the first column of a range and returns a value from a column "
            "to its right, and its last argument should usually be FALSE to require an exact "
            "match. "
            "XLOOKUP, available in newer versions, can look in any direction and returns an "
            "exact match by default. "
            "A #N/A result usually means the value was not found, often because of extra "
            "spaces or numbers stored as text."
        ),
        "url": "https://docs.example.org/spreadsheet-lookup",
    },
    {
        "id": "doc-17",
        "title": "First aid for minor burns",
        "text": (
            "Cool a minor burn under cool or lukewarm running water for at least twenty "
            "minutes as soon as possible. "
            "Do not use ice, butter or creams, which can damage the skin or trap heat. "
            "Remove rings or tight clothing near the area before it starts to swell, and "
            "cover the burn loosely with cling film or a clean non-fluffy dressing. "
            "Seek medical help for burns that are large, deep, on the face or hands, or on a "
            "young child."
        ),
        "url": "https://docs.example.org/first-aid-burns",
    },
    {
        "id": "doc-18",
        "title": "Treating small cuts and grazes",
        "text": (
            "Wash your hands, then rinse the cut under clean running water to remove dirt. "
            "Press on it with a clean cloth or gauze for several minutes to stop the bleeding. "
            "Once it has stopped, cover the wound with a plaster or sterile dressing and "
            "change it if it becomes wet or dirty. "
            "Get medical advice if the bleeding will not stop, the cut is deep or gaping, or "
            "it shows signs of infection such as spreading redness, warmth or pus."
        ),
        "url": "https://docs.example.org/first-aid-cuts",
    },
    {
        "id": "doc-19",
        "title": "What to keep in a home first aid kit",
        "text": (
            "A basic home first aid kit should include plasters in several sizes, sterile "
            "gauze dressings, a roll of medical tape and a crepe bandage. "
            "Add disposable gloves, small scissors, tweezers and a digital thermometer. "
            "Antiseptic wipes and a simple pain reliever are also useful. "
            "Check the kit twice a year, replace anything that has been used or has passed its "
            "expiry date, and keep it somewhere every adult in the house can find it."
        ),
        "url": "https://docs.example.org/first-aid-kit",
    },
    {
        "id": "doc-20",
        "title": "Starting a compost heap",
        "text": (
            "A compost heap works best in a sunny or partly shaded spot on bare soil, so worms "
            "and other organisms can move in. "
            "Mix green materials such as vegetable scraps and grass cuttings with brown "
            "materials such as cardboard, dry leaves and straw. "
            "Aim for roughly equal volumes of greens and browns. "
            "Compost is usually ready in six months to a year, when it is dark, crumbly and "
            "smells earthy."
        ),
        "url": "https://docs.example.org/compost-start",
    },
    {
        "id": "doc-21",
        "title": "What not to compost at home",
        "text": (
            "Meat, fish, dairy products and cooked food should stay out of a home compost heap "
            "because they attract rats and flies. "
            "Avoid pet waste from cats and dogs, which can carry harmful organisms. "
            "Diseased plants and perennial weeds with seeds or roots can survive a cool heap "
            "and spread around the garden later. "
            "Glossy or coated paper and anything plastic will not break down properly."
        ),
        "url": "https://docs.example.org/compost-avoid",
    },
    {
        "id": "doc-22",
        "title": "Fixing a smelly or slow compost heap",
        "text": (
            "A compost heap that smells of rotten eggs or ammonia is usually too wet or has too "
            "many greens. "
            "Mix in torn cardboard or dry leaves and turn the heap with a fork to let air in. "
            "A heap that is dry and barely changing needs more greens and a little water, so "
            "it feels like a wrung-out sponge. "
            "Turning the heap every few weeks speeds up decomposition noticeably."
        ),
        "url": "https://docs.example.org/compost-troubleshooting",
    },
    {
        "id": "doc-23",
        "title": "Booking train tickets in Europe",
        "text": (
            "Long-distance and high-speed trains in Europe often sell tickets about three to "
            "six months before travel, and the cheapest fares go first. "
            "Regional trains usually have fixed prices that do not change with demand, so "
            "there is little benefit in booking early. "
            "Many national rail operators sell tickets on their own websites and apps. "
            "Some high-speed trains require a seat reservation, while many regional trains do "
            "not."
        ),
        "url": "https://docs.example.org/europe-train-booking",
    },
    {
        "id": "doc-24",
        "title": "Using a rail pass in Europe",
        "text": (
            "A rail pass lets you travel on many trains across several countries for a set "
            "number of days. "
            "Passes suit travellers who take several long journeys or want flexibility, but "
            "they can cost more than point-to-point tickets bought early. "
            "Many high-speed and night trains still charge an extra reservation fee for pass "
            "holders. "
            "Before buying, compare the pass price with the cost of the individual tickets "
            "you expect to need."
        ),
        "url": "https://docs.example.org/europe-rail-pass",
    },
    {
        "id": "doc-25",
        "title": "Luggage and connections on European trains",
        "text": (
            "Most European trains have no formal luggage limit, but you must be able to carry "
            "your own bags and store them on racks or under the seat. "
            "Leave more time for connections at large stations, where platforms can be far "
            "apart. "
            "Connections booked on a single ticket are often protected, meaning you can take "
            "a later train if the first one is delayed. "
            "Separate tickets for each leg usually do not offer that protection."
        ),
        "url": "https://docs.example.org/europe-train-luggage",
    },
    {
        "id": "doc-26",
        "title": "Creating strong passwords",
        "text": (
            "Length matters more than complexity, so a passphrase of four or more random words "
            "is both strong and easy to remember. "
            "Never reuse the same password on different sites, because one leak can then "
            "expose all your accounts. "
            "Avoid personal details such as birthdays, pet names or your street. "
            "Only change a password when there is a reason, such as a suspected breach, "
            "rather than on a fixed schedule."
        ),
        "url": "https://docs.example.org/strong-passwords",
    },
    {
        "id": "doc-27",
        "title": "Using a password manager",
        "text": (
            "A password manager stores your passwords in an encrypted vault protected by one "
            "master password. "
            "It can generate a long unique password for every site and fill it in "
            "automatically, which also helps you avoid fake login pages. "
            "Choose a strong master passphrase you have never used elsewhere, and turn on "
            "two-factor authentication for the manager itself. "
            "Most managers work across phones and computers and can import passwords saved in "
            "your browser."
        ),
        "url": "https://docs.example.org/password-manager",
    },
    {
        "id": "doc-28",
        "title": "Two-factor authentication",
        "text": (
            "Two-factor authentication adds a second check after your password, such as a "
            "code from an authenticator app or a physical security key. "
            "Even if someone learns your password, they cannot log in without the second "
            "factor. "
            "Authenticator apps and security keys are safer than codes sent by text message, "
            "which can be intercepted. "
            "Save the backup codes somewhere safe in case you lose your phone."
        ),
        "url": "https://docs.example.org/two-factor-authentication",
    },
    {
        "id": "doc-29",
        "title": "Habits for better sleep",
        "text": (
            "Going to bed and waking up at the same time every day, including weekends, helps "
            "set your body clock. "
            "Keep the bedroom dark, quiet and slightly cool. "
            "Avoid caffeine in the afternoon and evening, since its effects can last six hours "
            "or more. "
            "If you cannot fall asleep after about twenty minutes, get up and do something "
            "calm in dim light until you feel sleepy."
        ),
        "url": "https://docs.example.org/sleep-habits",
    },
    {
        "id": "doc-30",
        "title": "Screens and sleep",
        "text": (
            "Bright screens in the hour before bed can delay sleepiness, partly because the "
            "light signals daytime to the brain. "
            "Stimulating content such as work email or games can also keep the mind alert. "
            "Dimming the screen, using a night mode and setting a cut-off time for devices "
            "can help. "
            "Charging your phone outside the bedroom removes the temptation to check it in "
            "the night."
        ),
        "url": "https://docs.example.org/screens-and-sleep",
    },
]

DEMO_QUESTIONS: list[dict[str, Any]] = [
    {
        "question": "My rice always comes out sticky and mushy. What am I doing wrong?",
        "subqueries": ["why is cooked rice sticky", "rice to water ratio on the stove"],
        "doc_ids": ["doc-01", "doc-04", "doc-03"],
        "answers": {
            "demo-small": (
                "Great question! 😊 Rice can be tricky for everyone! Just use a bit less water "
                "and cook it a little longer, and it should come out perfect every time! 🍚 "
                "Happy cooking! [doc-01]"
            ),
            "demo-large": (
                "Sticky, mushy rice usually comes from loose surface starch or too much "
                "water [doc-01]. Try this:\n\n"
                "1. Rinse the rice in cold water until it runs almost clear.\n"
                "2. Use about 1 part rice to 1.5 parts water by volume.\n"
                "3. Simmer covered on the lowest heat for about 15 minutes, then leave it "
                "covered off the heat for 10 minutes before fluffing with a fork."
            ),
            "demo-large-v2": (
                "The two usual causes are unrinsed rice and too much water [doc-01]. Rinse the "
                "grains until the water is nearly clear, use roughly **1.5 cups of water per "
                "cup of rice**, and let the pot rest, still covered, for 10 minutes after the "
                "15-minute simmer. If you plan to keep some for later, get it into the fridge "
                "within two hours [doc-03]."
            ),
        },
    },
    {
        "question": "How do I fix a flat tyre on my bike?",
        "subqueries": [
            "remove bicycle tyre and inner tube",
            "find puncture in inner tube",
            "inflate bike tyre to correct pressure",
        ],
        "doc_ids": ["doc-05", "doc-06", "doc-07"],
        "answers": {
            "demo-small": (
                "1. Remove the wheel and use tyre levers to lift one side of the tyre off the "
                "rim [doc-05].\n"
                "2. Pull out the tube, add a little air and find the leak.\n"
                "3. Check inside the tyre for the thorn or glass that caused it.\n"
                "4. Patch or replace the tube, refit the tyre by hand and inflate it to the "
                "pressure on the sidewall."
            ),
            "demo-large": (
                "Flats are almost always caused by a faulty valve, so start by replacing the "
                "valve [doc-07]. After that, pump the tyre up as hard as you can so it does "
                "not happen again."
            ),
            "demo-large-v2": (
                "Remove the wheel, lever off one side of the tyre and take out the inner "
                "tube [doc-05]. Inflate the tube slightly to locate the hole, then **check the "
                "inside of the tyre** for whatever caused the puncture, or the new tube will "
                "go flat too. Fit a patch or a new tube, seat it evenly, push the tyre back on "
                "by hand and pump it to the pressure printed on the sidewall [doc-05]."
            ),
        },
    },
    {
        "question": "My bike chain squeaks and the gears sound noisy. What should I do?",
        "subqueries": ["bike chain squeaking fix", "how to lubricate a bicycle chain"],
        "doc_ids": ["doc-06", "doc-07", "doc-05"],
        "answers": {
            "demo-small": (
                "A noisy chain is usually dirty or dry [doc-06]. Wipe it with a rag while "
                "pedalling backwards, use a degreaser if it is very grimy, let it dry, then "
                "put one drop of lube on each roller and wipe off the extra."
            ),
            "demo-large": (
                "Squeaking and noisy shifting usually mean the chain needs cleaning and "
                "lubricating [doc-06].\n\n"
                "- Wipe the chain with a rag while turning the pedals backwards; use a "
                "degreaser if it is caked in grime.\n"
                "- Once dry, apply **one drop of lube per roller** and wipe off the excess.\n"
                "- Repeat weekly if you ride in the wet, or about monthly in dry weather.\n\n"
                "If the noise comes from braking rather than pedalling, check the brakes "
                "instead [doc-07]."
            ),
            "demo-large-v2": (
                "Awesome that you're looking after your bike! 🚲✨ Just spray plenty of oil "
                "all over the chain and the wheels, the more the better, and the squeak will "
                "go away! You're doing amazing! [doc-05]"
            ),
        },
    },
    {
        "question": "Why are the leaves on my pothos turning yellow?",
        "subqueries": [
            "houseplant yellow leaves causes",
            "signs of overwatering houseplant",
            "how often to water a pothos",
        ],
        "doc_ids": ["doc-10", "doc-08", "doc-09"],
        "answers": {
            "demo-small": (
                "Yellow leaves mean the plant is thirsty 😊 Water it every day and it should "
                "recover in no time! [doc-08]"
            ),
            "demo-large": (
                "Yellow leaves can have several causes, so check the soil first [doc-10]:\n\n"
                "- **Soft yellow leaves and damp soil** usually mean overwatering or poor "
                "drainage.\n"
                "- **Crispy yellow or brown edges with dry soil** suggest it is too dry.\n"
                "- **One old leaf at the bottom** turning yellow is normal ageing.\n\n"
                "Water only when the top two centimetres of soil feel dry, and empty the "
                "saucer afterwards [doc-08]."
            ),
            "demo-large-v2": (
                "Most often it is overwatering: if the soil is damp and the leaves are soft, "
                "let it dry out and make sure the pot drains [doc-10]. Water only when the "
                "soil is dry about two centimetres down, and give less water in "
                "winter [doc-08]. If just one lower leaf is yellow, that is usually normal "
                "ageing."
            ),
        },
    },
    {
        "question": "How do I make a simple monthly budget?",
        "subqueries": ["steps to create a monthly budget", "50/30/20 budgeting rule"],
        "doc_ids": ["doc-11", "doc-12", "doc-13"],
        "answers": {
            "demo-small": (
                "Write down your take-home pay, then list fixed costs like rent and bills and "
                "estimate variable costs from recent bank statements [doc-11]. A simple split "
                "is 50% needs, 30% wants and 20% savings or debt repayment. Check it at the "
                "end of each month and adjust."
            ),
            "demo-large": (
                "1. **Income:** use your monthly take-home pay, not your pre-tax "
                "salary [doc-11].\n"
                "2. **Fixed costs:** rent, utilities, loan payments.\n"
                "3. **Variable costs:** estimate food, transport and so on from your last two "
                "or three months of statements.\n"
                "4. **Split:** a common guide is 50/30/20 for needs, wants and savings.\n\n"
                "Part of the savings share can build an emergency fund, starting with one "
                "month of essential costs [doc-12]."
            ),
            "demo-large-v2": (
                "What a fantastic goal! 💰🎉 Budgeting is super important and everyone should "
                "do it. Basically, just try to spend less than you earn and save whatever is "
                "left over. You've totally got this! 🙌 [doc-13]"
            ),
        },
    },
    {
        "question": (
            "How do I add up a column of expenses in a spreadsheet, and keep one cell fixed "
            "when I copy the formula?"
        ),
        "subqueries": ["spreadsheet SUM function range", "absolute cell reference dollar sign"],
        "doc_ids": ["doc-14", "doc-16", "doc-11"],
        "answers": {
            "demo-small": (
                "Use `=SUM(B2:B13)` to total the column [doc-14]. To keep a reference fixed "
                "when copying, add dollar signs, for example `$B$1`."
            ),
            "demo-large": (
                "You can total a column with VLOOKUP, for example `=VLOOKUP(B2:B13)` "
                '[doc-16]. To keep a cell fixed, put it in quotation marks like `"B1"` so it '
                "does not move when you copy the formula."
            ),
            "demo-large-v2": (
                "Type `=SUM(B2:B13)` in the cell below your expenses to add them "
                "up [doc-14]. When you copy a formula, references shift automatically, so "
                "lock the one that must stay put with dollar signs: `=B2/$B$14` always divides "
                "by the total in B14. Use `$B14` or `B$14` to fix only the column or only the "
                "row."
            ),
        },
    },
    {
        "question": "Why does my VLOOKUP return #N/A even though the value is in the table?",
        "subqueries": ["VLOOKUP #N/A error causes", "exact match lookup in a spreadsheet"],
        "doc_ids": ["doc-16", "doc-14", "doc-15"],
        "answers": {
            "demo-small": (
                "Great question! #N/A is just a common spreadsheet error 😊 Try retyping the "
                "formula or restarting the program, that usually fixes it! [doc-14]"
            ),
            "demo-large": (
                "#N/A means the lookup value was not found [doc-16]. Common causes:\n\n"
                "- **Extra spaces** in the lookup value or the table.\n"
                "- **Numbers stored as text** in one place and as numbers in the other.\n"
                "- The value is not in the **first column** of the range, which VLOOKUP "
                "requires.\n\n"
                "Also make sure the last argument is FALSE so it looks for an exact match."
            ),
            "demo-large-v2": (
                "Usually the values only look the same: extra spaces or numbers stored as text "
                "prevent an exact match [doc-16]. Check that the value you search for sits in "
                "the first column of the range and that the last argument is FALSE. If your "
                "version has XLOOKUP, it can search in any direction and matches exactly by "
                "default [doc-16]."
            ),
        },
    },
    {
        "question": "I burned my hand on a hot pan. What should I do right now?",
        "subqueries": ["first aid for a minor burn", "should I put ice on a burn"],
        "doc_ids": ["doc-17", "doc-19", "doc-18"],
        "answers": {
            "demo-small": (
                "Hold the burn under cool running water for at least 20 minutes [doc-17]. "
                "Don't use ice or butter. Take off rings before it swells and cover it loosely "
                "with cling film."
            ),
            "demo-large": (
                "1. **Cool it now:** run cool or lukewarm water over the burn for at least 20 "
                "minutes [doc-17].\n"
                "2. **Remove rings or bracelets** before your hand starts to swell.\n"
                "3. **Cover it loosely** with cling film or a clean non-fluffy dressing.\n\n"
                "Don't apply ice, butter or creams. Burns on the hands are one of the cases "
                "where you should get medical help [doc-17]."
            ),
            "demo-large-v2": (
                "Oh no, burns really hurt! 😟 Run a little water over it for a minute and "
                "then stick a plaster on it. You'll be fine! 💪 [doc-19]"
            ),
        },
    },
    {
        "question": "My compost bin smells really bad. How do I fix it?",
        "subqueries": ["compost smells of rotten eggs or ammonia", "balance greens and browns"],
        "doc_ids": ["doc-22", "doc-20", "doc-21"],
        "answers": {
            "demo-small": (
                "A bad smell usually means the heap is too wet or has too many "
                "greens [doc-22]. Mix in torn cardboard or dry leaves and turn it with a fork "
                "to get air in."
            ),
            "demo-large": (
                "Compost can definitely be smelly sometimes, which is a really common "
                "experience for gardeners! 🌱 It might help to move the bin somewhere else or "
                "add more food scraps to balance things out. Keep going, composting is great "
                "for the planet! 🌍 [doc-20]"
            ),
            "demo-large-v2": (
                "A rotten-egg or ammonia smell means too much moisture or too many "
                "greens [doc-22].\n\n"
                "- Mix in **browns** such as torn cardboard, dry leaves or straw.\n"
                "- **Turn the heap** with a fork to let air in, and repeat every few weeks.\n"
                "- Aim for roughly equal volumes of greens and browns from now on [doc-20].\n\n"
                "Also keep meat, fish, dairy and cooked food out of the bin [doc-21]."
            ),
        },
    },
    {
        "question": "Is a rail pass cheaper than buying individual train tickets in Europe?",
        "subqueries": [
            "europe rail pass versus point-to-point tickets",
            "reservation fee for rail pass holders",
            "when to book european train tickets",
        ],
        "doc_ids": ["doc-24", "doc-23", "doc-25"],
        "answers": {
            "demo-small": (
                "Yes, a rail pass is always the cheapest way to travel in Europe, and it covers "
                "every train with no extra fees [doc-24]."
            ),
            "demo-large": (
                "It depends on your trip [doc-24]. A pass pays off if you take several long "
                "journeys or want flexibility, but early point-to-point tickets are often "
                "cheaper, since high-speed fares go on sale three to six months "
                "ahead [doc-23]. Many high-speed and night trains also charge pass holders a "
                "**reservation fee**. Price the tickets you expect to need and compare the "
                "total with the pass."
            ),
            "demo-large-v2": (
                "Not always. **Add up the tickets you would buy anyway** and compare that with "
                "the pass price [doc-24]:\n\n"
                "- Booking high-speed trains early is often cheaper than a pass [doc-23].\n"
                "- Regional trains have fixed fares, so booking early makes little "
                "difference.\n"
                "- Pass holders still pay reservation fees on many high-speed and night "
                "trains.\n\n"
                "A pass is mostly worth it for many long trips or if you value flexibility."
            ),
        },
    },
    {
        "question": "Is it really safe to keep all my passwords in a password manager?",
        "subqueries": [
            "password manager security",
            "protecting the master password",
            "two-factor authentication for a password manager",
        ],
        "doc_ids": ["doc-27", "doc-28", "doc-26"],
        "answers": {
            "demo-small": (
                "Yes, for most people it is safer than reusing passwords [doc-27]. The vault "
                "is encrypted and lets you use a unique password for each site. Use a strong "
                "master passphrase and turn on two-factor authentication [doc-28]."
            ),
            "demo-large": (
                "For most people, yes: it is much safer than reusing passwords [doc-27].\n\n"
                "- The vault is **encrypted** and protected by a single master password.\n"
                "- It generates a **unique password for every site**, so one leak does not "
                "expose everything [doc-26].\n"
                "- Autofill helps you avoid fake login pages.\n\n"
                "Protect the manager itself with a never-reused master passphrase and "
                "two-factor authentication, ideally an app or security key [doc-28]."
            ),
            "demo-large-v2": (
                "Great question, you're clearly very security-savvy! 🔐😊 Password managers "
                "are pretty safe I think, but nothing is 100% secure, so it's up to you. "
                "Maybe also change all your passwords every month just in case! [doc-26]"
            ),
        },
    },
    {
        "question": "I keep scrolling on my phone in bed and can't fall asleep. Any tips?",
        "subqueries": ["phone use before bed and sleep", "tips to fall asleep faster"],
        "doc_ids": ["doc-30", "doc-29", "doc-09"],
        "answers": {
            "demo-small": (
                "Screens before bed can keep you awake [doc-30]. Set a cut-off time for your "
                "phone, dim the screen, and charge it outside the bedroom. Going to bed at the "
                "same time each night also helps [doc-29]."
            ),
            "demo-large": (
                "Sleep is so important, and it's great that you're thinking about it! 😴💤 "
                "Everyone is different, so just try to relax and not worry too much. Maybe "
                "some bright light from a window could help? [doc-09]"
            ),
            "demo-large-v2": (
                "1. **Set a device cut-off** an hour before bed and charge your phone outside "
                "the bedroom [doc-30].\n"
                "2. If you do use it, dim the screen and turn on night mode.\n"
                "3. Keep a regular bedtime and wake time, even at weekends [doc-29].\n"
                "4. If you are still awake after about 20 minutes, get up and do something "
                "calm in dim light until you feel sleepy [doc-29]."
            ),
        },
    },
]

# One topic word per entry of DEMO_QUESTIONS, stored in each payload's metadata.
_QUESTION_TOPICS: list[str] = [
    "cooking",
    "bicycle",
    "bicycle",
    "houseplants",
    "budgeting",
    "spreadsheets",
    "spreadsheets",
    "first-aid",
    "composting",
    "trains",
    "passwords",
    "sleep",
]

# Answer key -> (model name, model version) as recorded in the payload.
_MODEL_RELEASES: dict[str, tuple[str, str]] = {
    "demo-small": ("demo-small", "1"),
    "demo-large": ("demo-large", "1"),
    "demo-large-v2": ("demo-large", "2"),
}

_DOCS_BY_ID: dict[str, dict[str, str]] = {doc["id"]: doc for doc in DEMO_CORPUS}


def _retrieval_scores(index: int) -> list[float]:
    """Return deterministic, strictly descending scores for the three retrieved documents."""
    return [
        round(0.82 + 0.01 * (index % 5), 2),
        round(0.64 - 0.02 * (index % 4), 2),
        round(0.31 + 0.03 * (index % 3), 2),
    ]


def demo_answers() -> list[dict[str, Any]]:
    """Build one answer payload per demo question and model (12 x 3 = 36 payloads)."""
    payloads: list[dict[str, Any]] = []
    for index, item in enumerate(DEMO_QUESTIONS, start=1):
        question: str = item["question"]
        subqueries: list[str] = item["subqueries"]
        doc_ids: list[str] = item["doc_ids"]
        scores = _retrieval_scores(index)
        for answer_key, (model, model_version) in _MODEL_RELEASES.items():
            answer_text: str = item["answers"][answer_key]
            documents = [
                {**_DOCS_BY_ID[doc_id], "score": score}
                for doc_id, score in zip(doc_ids, scores, strict=True)
            ]
            payloads.append(
                {
                    "external_id": f"demo-{index:02d}-{answer_key}",
                    "conversation": f"demo-conv-{index:02d}",
                    "user_ref": f"demo-user-{(index - 1) % 5 + 1}",
                    "prompt": [{"role": "user", "content": question}],
                    "response": answer_text,
                    "model": model,
                    "model_version": model_version,
                    "metadata": {"demo": True, "topic": _QUESTION_TOPICS[index - 1]},
                    "trace": [
                        {
                            "kind": "decomposition",
                            "position": 0,
                            "input": {"question": question},
                            "output": {"subqueries": list(subqueries)},
                        },
                        {
                            "kind": "retrieval",
                            "position": 1,
                            "parent": 0,
                            "input": {"queries": list(subqueries)},
                            "output": {"documents": documents},
                        },
                        {
                            "kind": "generation",
                            "position": 2,
                            "parent": 1,
                            "input": {"documents": list(doc_ids)},
                            "output": {"text": answer_text},
                        },
                    ],
                }
            )
    return payloads
