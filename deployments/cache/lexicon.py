"""Word lists for the verification step (verify.py): general English and technical vocabulary.

Kept deliberately generic — common antonym/contrast sets, named-entity gazetteers (countries,
cities, languages, technologies, companies) and number words — rather than phrases from the
evaluation set, so the measured precision says something about unseen traffic.
"""

from __future__ import annotations

STOPWORDS = frozenset("""
a an the and or but if then else of at by for with about to from in into onto on off out over under
up down again further once here there when where why how what which who whom whose this that these
those am is are was were be been being have has had having do does did doing will would shall should
can could may might must i me my mine myself we us our ours you your yours yourself he him his she
her hers it its itself they them their theirs what's whats i'm im i've ive you're youre it's
so than too very just also only own same such both each few more most other some any all as until
while because during before after above below between through please pls plz tell give show let get
make know want need like way ways good best thing things one ones someone something anything
can't cannot dont don't doesn't isn't aren't won't wasn't weren't didn't shouldn't wouldn't couldn't
hey hi hello thanks thank
""".split())

NEGATIONS = frozenset("""
not no never none nothing nobody nowhere neither nor cannot cant can't dont don't doesnt
doesn't isnt isn't arent aren't wasnt wasn't werent weren't wont won't didnt didn't shouldnt
shouldn't wouldnt wouldn't couldnt couldn't havent haven't hasnt hasn't hadnt hadn't mustnt mustn't
neednt needn't aint ain't unable refuse refuses refused refusing avoid avoiding avoids
""".split())
# Prepositional negation, compared separately from the verbal kind ("without X" vs "not ... without X").
NEG_PREPOSITIONS = frozenset({"without", "except", "excluding", "lacking", "minus"})

# Two-word phrases joined before grouping ("turn off" -> "turn_off").
PHRASES = {
    ("turn", "on"): "turn_on", ("turn", "off"): "turn_off", ("switch", "on"): "turn_on",
    ("switch", "off"): "turn_off", ("log", "in"): "log_in", ("log", "out"): "log_out",
    ("sign", "in"): "log_in", ("sign", "out"): "log_out", ("sign", "up"): "sign_up",
    ("check", "in"): "check_in", ("check", "out"): "check_out", ("speed", "up"): "speed_up",
    ("slow", "down"): "slow_down", ("scale", "up"): "scale_up", ("scale", "down"): "scale_down",
    ("zoom", "in"): "zoom_in", ("zoom", "out"): "zoom_out", ("most", "expensive"): "expensive",
    ("least", "expensive"): "cheap", ("pros", "and"): "pros_and",
    # relative dates: "last week" is one date, not the words "last" and "week"
    ("last", "night"): "last_night", ("last", "week"): "last_week", ("this", "week"): "this_week",
    ("next", "week"): "next_week", ("last", "weekend"): "last_weekend", ("this", "weekend"): "this_weekend",
    ("next", "weekend"): "next_weekend", ("last", "month"): "last_month", ("this", "month"): "this_month",
    ("next", "month"): "next_month", ("last", "year"): "last_year", ("this", "year"): "this_year",
    ("next", "year"): "next_year",
}

# Contrast sets: words in the same group with different values mean different questions when
# both texts use the group. word -> (group, value)
_GROUPS: dict[str, list[list[str]]] = {
    "size": [["largest", "biggest", "greatest", "large", "big", "huge", "larger", "bigger"],
             ["smallest", "tiniest", "small", "tiny", "smaller", "least"]],
    "height": [["tallest", "highest", "tall", "high", "taller", "higher"],
               ["shortest", "lowest", "short", "low", "shorter", "lower"]],
    "speed": [["fastest", "quickest", "fast", "quick", "faster", "quicker"],
              ["slowest", "slow", "slower"]],
    "temperature": [["hottest", "warmest", "hot", "warm", "hotter", "warmer", "heat", "warm_up"],
                    ["coldest", "coolest", "cold", "cool", "colder", "cooler", "chill", "freeze"]],
    "cost": [["cheapest", "cheap", "cheaper", "affordable", "inexpensive"],
             ["expensive", "costliest", "pricier", "priciest"]],
    "quality": [["best", "better", "greatest"], ["worst", "worse"]],
    "age": [["oldest", "older", "elderly"], ["newest", "youngest", "younger", "latest"]],
    "order": [["first", "earliest", "beginning", "start"], ["last", "final", "latest", "end"]],
    "time_rel": [["before", "prior", "pre"], ["after", "post", "following"], ["during"]],
    "amount": [["increase", "increasing", "raise", "raising", "boost", "grow", "growing", "gain", "gaining",
                "more", "maximize", "up", "upgrade", "higher"],
               ["decrease", "decreasing", "reduce", "reducing", "lower", "lowering", "cut", "shrink",
                "lose", "losing", "less", "fewer", "minimize", "down", "downgrade"]],
    "extreme": [["max", "maximum", "most", "upper"], ["min", "minimum", "least", "lower"]],
    "edit": [["add", "adding", "insert", "create", "creating", "append", "include", "install", "installing"],
             ["remove", "removing", "delete", "deleting", "drop", "erase", "destroy", "exclude", "uninstall",
              "uninstalling"],
             ["update", "updating", "modify", "edit", "change", "rename", "renaming"]],
    "toggle": [["enable", "enabling", "activate", "allow", "unblock", "turn_on", "unmute", "show"],
               ["disable", "disabling", "deactivate", "block", "deny", "turn_off", "mute", "hide"]],
    "trade": [["buy", "buying", "purchase", "purchasing", "borrow", "rent", "renting"],
              ["sell", "selling", "lend", "lending", "lease"]],
    "transfer": [["send", "sending", "give", "push", "upload", "outgoing"],
                 ["receive", "receiving", "take", "pull", "download", "incoming"]],
    "io": [["read", "reading", "input"], ["write", "writing", "output"]],
    "state": [["open", "opening", "start", "starting", "launch", "run", "running", "log_in", "connect"],
              ["close", "closing", "stop", "stopping", "kill", "quit", "exit", "log_out", "disconnect",
               "shutdown", "terminate"]],
    "crypto": [["encrypt", "encrypting", "encode", "encoding", "compress", "compressing", "serialize",
                "zip", "pack", "archive"],
               ["decrypt", "decrypting", "decode", "decoding", "decompress", "extract", "deserialize",
                "unzip", "unpack", "unarchive"]],
    "judgement": [["advantages", "advantage", "pros", "benefits", "benefit", "strengths", "strength",
                   "upsides", "positives", "good"],
                  ["disadvantages", "disadvantage", "cons", "drawbacks", "drawback", "weaknesses", "weakness",
                   "downsides", "risks", "negatives", "bad", "dangers"]],
    "truth": [["true", "correct", "right", "valid"], ["false", "incorrect", "wrong", "invalid"]],
    "outcome": [["win", "wins", "winning", "won", "pass", "passed", "succeed", "success"],
                ["lose", "loses", "losing", "lost", "fail", "failed", "failure"]],
    "side": [["left"], ["right"]],
    "compass": [["north", "northern"], ["south", "southern"], ["east", "eastern"], ["west", "western"]],
    "gender": [["male", "man", "men", "boy", "boys", "father", "dad", "husband", "brother", "son", "he"],
               ["female", "woman", "women", "girl", "girls", "mother", "mom", "wife", "sister", "daughter",
                "she"]],
    "season": [["spring"], ["summer"], ["autumn", "fall"], ["winter"]],
    "daypart": [["morning", "breakfast"], ["afternoon", "lunch"], ["evening", "dinner"], ["night", "midnight"]],
    "day": [["yesterday", "last_night"], ["today", "tonight"], ["tomorrow"], ["last_week"], ["this_week"],
            ["next_week"], ["last_weekend"], ["this_weekend"], ["next_weekend"], ["last_month"], ["this_month"],
            ["next_month"], ["last_year"], ["this_year"], ["next_year"]],
    "direction_sort": [["ascending", "increasing"], ["descending", "decreasing"]],
    "case": [["uppercase", "upper", "capital", "capitals"], ["lowercase", "lower"]],
    "scope": [["public"], ["private"], ["protected"], ["internal"], ["external"]],
    "place": [["inside", "indoor", "indoors", "interior"], ["outside", "outdoor", "outdoors", "exterior"]],
    "location": [["local", "locally"], ["remote", "remotely", "global", "globally", "cloud"]],
    "tier": [["frontend", "front-end", "client", "client-side"], ["backend", "back-end", "server", "server-side"]],
    "sync": [["sync", "synchronous", "synchronously", "blocking"], ["async", "asynchronous", "asynchronously",
                                                                     "non-blocking"]],
    "typing": [["static", "statically"], ["dynamic", "dynamically"]],
    "mutability": [["mutable"], ["immutable"]],
    "axis": [["horizontal", "horizontally", "row", "rows", "width"], ["vertical", "vertically", "column",
                                                                        "columns", "height"]],
    "difficulty": [["easy", "easiest", "easier", "simple", "simplest"],
                   ["hard", "hardest", "harder", "difficult", "toughest"]],
    "strength": [["strong", "strongest", "stronger"], ["weak", "weakest", "weaker"]],
    "weight": [["heavy", "heaviest", "heavier"], ["light", "lightest", "lighter"]],
    "length": [["long", "longest", "longer"], ["short", "shortest", "shorter", "brief"]],
    "safety": [["safe", "safest", "safer", "safely"], ["dangerous", "unsafe", "harmful", "toxic", "poisonous"]],
    "legality": [["legal", "allowed", "permitted", "lawful"], ["illegal", "forbidden", "prohibited", "banned",
                                                               "unlawful"]],
    "emotion": [["love", "like", "enjoy"], ["hate", "dislike"]],
    "agreement": [["agree", "accept", "approve", "yes"], ["disagree", "reject", "decline", "refuse", "no"]],
    "role_interview": [["interviewer", "employer", "recruiter", "hiring"], ["candidate", "applicant",
                                                                          "interviewee", "employee"]],
    "role_trade": [["buyer", "customer", "tenant", "borrower", "guest"],
                   ["seller", "vendor", "landlord", "lender", "host"]],
    "role_school": [["teacher", "professor", "instructor"], ["student", "pupil", "learner"]],
    "role_family": [["parent", "parents"], ["child", "children", "kid", "kids", "baby", "toddler"]],
    "causality": [["cause", "causes", "reason", "reasons", "origins"],
                  ["consequence", "consequences", "effect", "effects", "impact", "results", "aftermath"]],
    "argument": [["for", "support", "favor"], ["against", "oppose"]],
    "polarity": [["positive"], ["negative"]],
    "tense": [["past", "history", "historical"], ["future", "prediction", "forecast"]],
    "formality": [["formal", "professional", "polite"], ["casual", "informal", "friendly", "slang"]],
    "temperature_unit": [["celsius", "centigrade"], ["fahrenheit"], ["kelvin"]],
    "distance_unit": [["km", "kilometer", "kilometers", "kilometre", "kilometres"],
                      ["mile", "miles"], ["meter", "meters", "metre", "metres"],
                      ["foot", "feet", "ft"], ["inch", "inches"], ["cm", "centimeter", "centimeters"],
                      ["yard", "yards"]],
    "mass_unit": [["kg", "kilogram", "kilograms", "kilo", "kilos"], ["pound", "pounds", "lb", "lbs"],
                  ["gram", "grams"], ["ounce", "ounces", "oz"], ["stone"], ["ton", "tons", "tonne"]],
    "volume_unit": [["liter", "liters", "litre", "litres"], ["gallon", "gallons"], ["cup", "cups"],
                    ["tablespoon", "tablespoons", "tbsp"], ["teaspoon", "teaspoons", "tsp"],
                    ["ml", "milliliter", "milliliters"], ["pint", "pints"], ["quart", "quarts"]],
    "time_unit": [["second", "seconds", "sec", "secs"], ["minute", "minutes", "min", "mins"],
                  ["hour", "hours", "hr", "hrs"], ["day", "days", "daily"], ["week", "weeks", "weekly"],
                  ["month", "months", "monthly"], ["year", "years", "yearly", "annual", "annually"]],
    "currency": [["dollar", "dollars", "usd", "$"], ["euro", "euros", "eur", "€"], ["pound_sterling", "gbp", "£"],
                 ["yen", "jpy"], ["rupee", "rupees", "inr"], ["bitcoin", "btc"]],
    "data_unit": [["kb", "kilobyte", "kilobytes"], ["mb", "megabyte", "megabytes"], ["gb", "gigabyte",
                                                                                    "gigabytes"],
                  ["tb", "terabyte", "terabytes"]],
    "writing": [["poem", "poems", "poetry", "verse"], ["haiku"], ["limerick"], ["sonnet"],
                ["story", "stories", "tale", "fable"], ["essay"], ["song", "lyrics"], ["joke", "jokes", "pun"],
                ["fact", "facts", "trivia"], ["tweet", "post"], ["email", "e-mail"], ["text", "sms"],
                ["letter"], ["note"], ["report"], ["speech", "toast"], ["eulogy"], ["slogan", "tagline"],
                ["headline", "title"], ["quiz", "test", "exam"], ["lesson", "curriculum"],
                ["review"], ["description"], ["summary", "summarize", "summarise", "tldr"],
                ["outline"], ["contract", "agreement"], ["invoice", "receipt", "bill"],
                ["press", "announcement"], ["diagram", "chart"]],
    "food_info": [["recipe", "cook", "make", "bake"], ["nutrition", "calories", "protein", "nutritional"]],
    "code_task": [["explain", "explanation", "understand"], ["refactor", "rewrite", "clean"],
                  ["debug", "bug", "fix", "error"], ["comment", "comments", "document", "docstring"],
                  ["test", "tests", "unit"], ["optimize", "optimise", "faster"], ["translate", "port"]],
    "lang_task": [["translate", "translation"], ["proofread", "grammar", "spelling"],
                  ["paraphrase", "rephrase", "reword"]],
}

GROUPS: dict[str, list[tuple[str, int]]] = {}
for _group, _sets in _GROUPS.items():
    for _i, _words in enumerate(_sets):
        for _w in _words:
            if (_group, _i) not in GROUPS.setdefault(_w, []):
                GROUPS[_w].append((_group, _i))

# Prefix pairs that flip a word's meaning when the rest of the word is the same
# ("install"/"uninstall", "import"/"export", "encrypt"/"decrypt", "upload"/"download").
FLIP_PAIRS = frozenset({
    ("", "un"), ("", "dis"), ("", "non"), ("", "de"), ("", "mis"), ("", "anti"), ("", "il"), ("", "im"),
    ("", "ir"), ("", "in"), ("im", "ex"), ("in", "ex"), ("en", "de"), ("en", "dis"), ("in", "de"),
    ("up", "down"), ("in", "out"), ("under", "over"), ("inc", "dec"), ("pre", "post"),
})
FLIP_PREFIXES = tuple(sorted({p for pair in FLIP_PAIRS for p in pair if p}, key=len, reverse=True))
ROMAN = {"II": 2, "III": 3, "IV": 4, "VI": 6, "VII": 7, "VIII": 8, "IX": 9, "XI": 11, "XII": 12, "XIII": 13,
         "XIV": 14, "XV": 15, "XVI": 16, "XX": 20}
# "to" after these words starts an infinitive, not a direction ("how to", "want to").
INFINITIVE_LEADS = frozenset({"how", "want", "wants", "need", "needs", "way", "ways", "trying", "try", "able",
                              "going", "used", "have", "has", "had", "like", "love", "where", "what", "when",
                              "order", "best", "easiest", "fastest", "ought", "supposed", "tips"})

NUMBER_WORDS = {
    "zero": 0, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "dozen": 12,
    "twice": 2, "half": 0.5, "quarter": 0.25,
}
SCALE_WORDS = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12}
ORDINALS = {
    "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "twentieth": 20, "hundredth": 100,
}

# -- gazetteers (lower case; multi-word names joined with spaces) ------------------------------------
COUNTRIES = """
afghanistan albania algeria andorra angola argentina armenia australia austria azerbaijan bahamas bahrain
bangladesh barbados belarus belgium belize benin bhutan bolivia bosnia botswana brazil brunei bulgaria
burkina burundi cambodia cameroon canada chad chile china colombia comoros congo croatia cuba cyprus
czechia denmark djibouti dominica ecuador egypt eritrea estonia eswatini ethiopia fiji finland france
gabon gambia georgia germany ghana greece grenada guatemala guinea guyana haiti honduras hungary iceland
india indonesia iran iraq ireland israel italy jamaica japan jordan kazakhstan kenya kiribati kosovo
kuwait kyrgyzstan laos latvia lebanon lesotho liberia libya liechtenstein lithuania luxembourg madagascar
malawi malaysia maldives mali malta mauritania mauritius mexico micronesia moldova monaco mongolia
montenegro morocco mozambique myanmar namibia nauru nepal netherlands holland nicaragua niger nigeria
norway oman pakistan palau palestine panama paraguay peru philippines poland portugal qatar romania russia
rwanda samoa senegal serbia seychelles singapore slovakia slovenia somalia spain sudan suriname sweden
switzerland syria taiwan tajikistan tanzania thailand togo tonga tunisia turkey turkmenistan tuvalu
uganda ukraine uruguay uzbekistan vanuatu vatican venezuela vietnam yemen zambia zimbabwe scotland wales
england britain greenland tibet
""".split()
MULTI_COUNTRIES = ["united states", "united kingdom", "new zealand", "south africa", "south korea",
                   "north korea", "saudi arabia", "sri lanka", "costa rica", "el salvador", "czech republic",
                   "dominican republic", "ivory coast", "hong kong", "puerto rico", "united arab emirates",
                   "papua new guinea", "east timor", "cape verde", "san marino", "trinidad and tobago"]
REGIONS = """
africa asia europe antarctica oceania america americas caribbean scandinavia balkans siberia patagonia
sahara amazon arctic pacific atlantic mediterranean alps himalayas andes rockies
alabama alaska arizona arkansas california colorado connecticut delaware florida hawaii idaho illinois
indiana iowa kansas kentucky louisiana maine maryland massachusetts michigan minnesota mississippi
missouri montana nebraska nevada ohio oklahoma oregon pennsylvania tennessee texas utah vermont virginia
washington wisconsin wyoming ontario quebec bavaria catalonia tuscany provence sicily bali
""".split()
MULTI_REGIONS = ["north america", "south america", "latin america", "middle east", "new york", "new jersey",
                 "new mexico", "new hampshire", "north carolina", "south carolina", "north dakota",
                 "south dakota", "west virginia", "rhode island", "british columbia", "southeast asia",
                 "east africa", "west africa", "central america", "eastern europe", "western europe"]
CITIES = """
london paris berlin madrid rome milan venice florence naples barcelona lisbon porto amsterdam brussels
vienna prague budapest warsaw krakow munich frankfurt hamburg cologne zurich geneva copenhagen stockholm
oslo helsinki dublin edinburgh manchester liverpool glasgow athens istanbul moscow kyiv kiev
tokyo kyoto osaka seoul beijing shanghai shenzhen taipei bangkok hanoi singapore jakarta manila mumbai
delhi bangalore bengaluru chennai kolkata karachi lahore dhaka dubai doha riyadh tehran baghdad jerusalem
cairo lagos nairobi johannesburg cape accra casablanca marrakech addis tunis sydney melbourne brisbane
perth auckland wellington toronto montreal vancouver ottawa calgary chicago boston seattle denver austin
dallas houston miami atlanta philadelphia phoenix detroit portland nashville orlando vegas sf nyc la
mexico bogota lima santiago quito caracas havana rio paulo aires lyon marseille nice bordeaux seville
valencia granada heathrow gatwick jfk lax stansted brooklyn manhattan hollywood
""".split()
MULTI_CITIES = ["los angeles", "san francisco", "san diego", "san jose", "las vegas", "new orleans",
                "salt lake city", "rio de janeiro", "sao paulo", "buenos aires", "mexico city",
                "hong kong", "cape town", "tel aviv", "kuala lumpur", "ho chi minh", "washington dc",
                "st louis", "st petersburg", "silicon valley"]
LANGUAGES = """
english spanish french german italian portuguese dutch swedish norwegian danish finnish polish czech
russian ukrainian greek turkish arabic hebrew persian farsi hindi urdu bengali punjabi tamil telugu
chinese mandarin cantonese japanese korean vietnamese thai indonesian malay tagalog swahili latin
irish welsh hungarian romanian bulgarian serbian croatian catalan basque esperanto yiddish
american british canadian australian mexican brazilian indian european african asian
""".split()
TECH = """
python java javascript typescript ruby php perl go golang rust kotlin swift scala haskell elixir erlang
clojure lua julia dart fortran cobol c c++ c# f# r matlab bash zsh powershell sql nosql graphql html css
sass scss wasm webassembly solidity objective-c assembly
react vue angular svelte nextjs next.js nuxt jquery redux django flask fastapi rails laravel spring
express node node.js nodejs deno bun nestjs dotnet .net asp.net blazor electron flutter xamarin
pandas numpy polars scipy matplotlib seaborn plotly sklearn scikit-learn tensorflow pytorch keras jax
huggingface transformers langchain spark pyspark hadoop flink kafka airflow dbt snowflake databricks
bigquery redshift postgresql postgres mysql mariadb sqlite oracle mssql mongodb mongo cassandra redis
memcached elasticsearch opensearch dynamodb firestore firebase supabase neo4j couchdb influxdb clickhouse
docker kubernetes k8s helm podman swarm openshift nomad terraform ansible puppet chef pulumi
cloudformation vagrant jenkins travis circleci gitlab github bitbucket git svn mercurial
aws azure gcp heroku vercel netlify cloudflare digitalocean linode ec2 s3 lambda ecs eks gke aks
nginx apache haproxy traefik envoy istio linkerd prometheus grafana datadog splunk kibana logstash
linux ubuntu debian fedora centos rhel arch alpine windows macos mac osx ios android ipados chromeos
chromebook unix freebsd wsl vim neovim emacs vscode intellij pycharm eclipse xcode jupyter colab
excel sheets word powerpoint outlook notion slack teams zoom jira confluence trello figma photoshop
illustrator wordpress shopify stripe paypal venmo zelle twilio sendgrid auth0 okta oauth oauth2 saml jwt
ldap kerberos ssh ssl tls https http http2 http3 tcp udp quic grpc rest soap websocket websockets dns
dhcp vpn ip ipv4 ipv6 smtp imap ftp sftp json xml yaml toml csv parquet avro protobuf markdown latex
pytest unittest jest mocha cypress selenium playwright junit rspec webpack vite babel npm yarn pnpm pip
conda poetry pipenv maven gradle cargo cmake make bazel homebrew apt yum chocolatey
usestate useeffect usememo usecallback usecontext usereducer
llm gpt chatgpt claude gemini llama mistral openai anthropic bert
iphone ipad pixel galaxy airpods macbook imac thinkpad kindle alexa siri playstation xbox nintendo switch
bluetooth wifi wi-fi usb hdmi ssd gpu cpu ram
""".split()
MULTI_TECH = ["github actions", "gitlab ci", "google sheets", "google drive", "google cloud", "visual studio",
              "spring boot", "react native", "docker compose", "docker swarm", "compute engine",
              "app engine", "cloud run", "azure devops", "power bi", "sql server", "apple watch",
              "google docs", "microsoft teams", "ruby on rails", "scikit learn", "hugging face"]
COMPANIES = """
google alphabet microsoft apple amazon meta facebook instagram whatsapp twitter tiktok snapchat
linkedin youtube netflix spotify hulu disney uber lyft airbnb tesla ford toyota honda bmw mercedes
volkswagen audi nissan hyundai kia ferrari nvidia intel amd qualcomm samsung sony lg huawei xiaomi
ibm oracle salesforce adobe sap cisco dell hp lenovo asus acer walmart target costco ikea starbucks
mcdonalds nike adidas visa mastercard amex chase delta united emirates ryanair easyjet lufthansa
fedex ups dhl usps ebay etsy alibaba reddit pinterest discord dropbox zoom coca-cola pepsi
""".split()
OTHER_ENTITIES = """
mercury venus earth mars jupiter saturn uranus neptune pluto moon sun titan europa ganymede
christmas easter ramadan diwali hanukkah thanksgiving halloween passover
monday tuesday wednesday thursday friday saturday sunday
january february march april may june july august september october november december
""".split()

ALIASES = {
    "k8s": "kubernetes", "js": "javascript", "ts": "typescript", "py": "python", "golang": "go",
    "postgres": "postgresql", "psql": "postgresql", "mongo": "mongodb", "node": "node.js", "nodejs": "node.js",
    "next.js": "nextjs", "usa": "united states", "us": "united states", "america": "united states",
    "u.s.": "united states", "uk": "united kingdom", "u.k.": "united kingdom", "britain": "united kingdom",
    "england": "united kingdom", "holland": "netherlands", "nyc": "new york", "sf": "san francisco",
    "la": "los angeles", "kiev": "kyiv", "bengaluru": "bangalore", "osx": "macos", "mac": "macos",
    "wi-fi": "wifi", "sklearn": "scikit-learn", "scikit learn": "scikit-learn", "tf": "tensorflow",
    "torch": "pytorch", "gcp": "google cloud", "e-mail": "email", "facebook": "meta", "alphabet": "google",
    "oauth": "oauth2", "chatgpt": "gpt", "hugging face": "huggingface", "dotnet": ".net",
    "american": "united states", "british": "united kingdom", "farsi": "persian", "mandarin": "chinese",
}

GAZETTEER = frozenset(COUNTRIES + MULTI_COUNTRIES + REGIONS + MULTI_REGIONS + CITIES + MULTI_CITIES + LANGUAGES
                      + TECH + MULTI_TECH + COMPANIES + OTHER_ENTITIES + list(ALIASES))
MULTI_WORD = frozenset(n for n in GAZETTEER if " " in n)
# Gazetteer words that are also ordinary English: count only when capitalised in the text.
AMBIGUOUS = frozenset("""
go rust swift dart julia r c make chef spring express bun switch word sheets teams notion target delta
united visa chase apple amazon oracle mercury venus earth moon sun may march august turkey chad georgia
jordan china cuba guinea niger nice perth reading bath sky mac arch alpine ram galaxy pixel lambda
helm nomad puppet ant maven cargo yarn poetry conda jest mocha cypress spark flink kafka airflow
snowflake rails flask django envoy gem us la sf excel zoom slack outlook stripe chase bill
""".split())

# The action a request asks for: the first of these words in the text. Two requests whose actions
# fall in different sets ask for different work ("find duplicates" vs "delete duplicates").
_ACTIONS: list[list[str]] = [
    ["write", "compose", "draft", "create", "generate", "make", "produce", "build", "craft", "give", "suggest",
     "recommend", "come"],
    ["explain", "describe", "define", "clarify", "elaborate", "tell", "teach", "what's", "meaning"],
    ["find", "get", "locate", "search", "select", "show", "list", "retrieve", "fetch", "look", "query", "identify",
     "detect", "check"],
    ["delete", "remove", "drop", "erase", "clear", "purge", "eliminate", "strip"],
    ["fix", "repair", "solve", "resolve", "debug", "troubleshoot"],
    ["summarize", "summarise", "condense", "shorten", "recap", "summary", "tldr"],
    ["translate"],
    ["draw", "sketch", "illustrate", "diagram", "plot", "visualize", "visualise", "paint"],
    ["calculate", "compute", "count", "figure", "estimate", "measure"],
    ["convert", "transform", "turn"],
    ["compare", "contrast"],
    ["sort", "order", "rank", "arrange"],
    ["analyze", "analyse", "evaluate", "assess", "critique", "review", "examine"],
    ["rewrite", "rephrase", "paraphrase", "reword", "edit", "proofread", "correct", "improve", "polish"],
    ["test", "verify", "validate"],
    ["update", "modify", "change", "replace", "rename"],
    ["install", "setup", "configure", "set"],
    ["optimize", "optimise", "speed", "tune"],
    ["merge", "combine", "join", "concatenate"],
    ["split", "divide", "separate"],
    ["copy", "duplicate", "clone"],
    ["move", "transfer", "migrate"],
]
ACTIONS: dict[str, int] = {w: i for i, words in enumerate(_ACTIONS) for w in words}
# "give me a summary": the action is the noun after a light verb when that noun names one.
LIGHT_VERBS = frozenset({"give", "get", "show", "provide", "tell", "send", "make", "do", "write"})

# What a question asks for, from its question word: "how long" (a duration) is another question than "how"
# (a manner) or "how much" (an amount). Plain "what"/"which" and yes/no questions have no type and are
# not compared. word after "how" -> type ("how" alone: manner).
HOW_TYPES = {"many": "quantity", "much": "quantity", "long": "duration", "far": "distance", "often": "frequency",
             "frequently": "frequency", "old": "age", "come": "reason", "big": "size", "large": "size",
             "tall": "size", "high": "size", "fast": "speed", "quickly": "speed", "soon": "time"}
WH_TYPES = {"why": "reason", "when": "time", "where": "place", "who": "person", "whom": "person",
            "whose": "person", "who's": "person"}
# "what year", "which city": what/which + one of these nouns asks for that type.
WHAT_TYPES = {"year": "time", "time": "time", "date": "time", "day": "time", "month": "time", "century": "time",
              "temperature": "temperature", "city": "place", "country": "place", "place": "place"}
# "how many months" asks for a duration, "how many miles" for a distance, "how many calories" for an amount.
DURATION_NOUNS = frozenset({"time", "seconds", "minutes", "hours", "days", "weeks", "months", "years", "mins",
                            "hrs"})
DISTANCE_NOUNS = frozenset({"miles", "kilometers", "kilometres", "km", "meters", "metres", "feet", "yards"})
# Subject pronouns: "and" before one of these joins clauses, not two things asked about.
SUBJECT_PRONOUNS = frozenset({"i", "we", "you", "he", "she", "they", "it", "i'm", "it's", "there"})
CONJUNCTIONS = frozenset({"and", "&", "plus"})
CONJUNCT_SKIP_LEFT = frozenset({"for", "of", "to", "in", "on", "with", "up", "out", "down"})
CONJUNCT_SKIP_RIGHT = frozenset({"the", "a", "an", "my", "your", "our", "their", "his", "her", "its", "some", "who",
                                 "what", "how", "when", "where", "were", "was", "is", "are", "do", "does", "did"})
AUXILIARIES = frozenset({"is", "are", "was", "were", "do", "does", "did", "will", "would", "can", "could", "should",
                         "shall", "has", "have", "had", "may", "might", "must", "am", "won't", "isn't", "aren't",
                         "didn't", "doesn't", "don't", "can't"})

# Words that frame a question rather than name its subject; a swap of these is not a new topic.
FRAME_WORDS = frozenset("""
difference differ different happen happened happens explain describe work works use used using purpose
way ways step steps tip tips advice best good new exactly usual usually typical often frequently mean
meaning thing things example examples kind type sort possible able help need needs want know show tell
give get make made go goes going should would could can
""".split())
