"""Passwords that guessing tools try first: refused whatever their length (compared in lower case).

A short list on purpose: the long tail is covered by the minimum length; these are the
predictable ten-character-and-longer choices people make when told "at least ten".
"""

_LISTED = """
    password password1 password12 password123 password1234 passwords
    passw0rd123 p@ssw0rd123 p@ssword123 mypassword mypassword1 newpassword newpassword123
    changeme123 changeme!! letmein123 letmeinnow welcome123 welcome1234 welcometo1
    1234567890 0123456789 12345678910 123456789a 123456789q a123456789 q123456789
    1111111111 0000000000 1122334455 1234512345 9876543210 0987654321 1q2w3e4r5t
    1q2w3e4r5t6y qwertyuiop qwerty1234 qwerty12345 qwerty123456 qwertyuiop1 asdfghjkl1
    asdfghjkl; zxcvbnm123 qazwsxedc1 qazwsxedcrfv 1qaz2wsx3edc abcdefghij abcd123456
    abc1234567 iloveyou12 iloveyou123 sunshine12 football12 football123 baseball12
    basketball superman12 princess12 starwars12 dragon1234 monkey1234 trustno1234
    administrator admin12345 admin123456 adminadmin rootpassword secret1234 secretpassword
    ringspot123 ringspot1234 viroscope1 virology123 laboratory laboratory1
"""

COMMON_PASSWORDS = frozenset(_LISTED.split())
