#!/usr/bin/env python3
"""Generates benign API requests: benign.jsonl (deterministic, seed 8).

Realistic traffic of a products/customers/orders API: JSON bodies with
names (apostrophes, accents, hyphens), emails, URLs, addresses, prices,
ISO dates, markdown descriptions, and GET searches with punctuation.
"""
import json, random
random.seed(8)
first = ["Alice", "Bob", "Seán", "Zoë", "Mary-Jane", "D'Angelo", "José", "Ngozi", "Wei", "Priya", "Åsa", "Liam", "Chloé", "Mohammed", "Jean-Luc", "Siobhán"]
last = ["O'Brien", "O'Neil", "D'Arcy", "Smith", "van der Berg", "García Márquez", "Nguyen", "Müller", "Kowalski", "Okafor", "Sørensen", "MacDonald", "St. John", "Li", "Dubois", "Fitzgerald-Hayes"]
cities = ["Dublin", "São Paulo", "Zürich", "New York", "Cape Town", "Kraków", "Québec", "Osaka", "Lagos", "Reykjavík"]
streets = ["12 Baker Street", "221B Baker St., Apt. 4", "1600 Amphitheatre Pkwy", "Rue de l'Église 5", "Hauptstraße 42", "742 Evergreen Terrace", "Via dell'Orso 3"]
products = ["Trail Running Shoe", "Espresso Machine (Pro)", "USB-C Cable 2m", "Kid's Backpack", "Men's Rain Jacket", "4K Monitor 27\"", "Chef's Knife 20cm", "Noise-Cancelling Headphones", "Yoga Mat - Extra Thick", "Coffee Beans, 1kg", "Smart Watch v2.1", "Desk Lamp w/ Dimmer"]
words = ["great", "fast shipping", "fits well", "would buy again", "a bit small", "excellent value", "the colour is lovely", "arrived on time", "works as described", "battery lasts two days"]
cats = ["footwear", "kitchen", "electronics", "outdoor", "office", "toys", "books", "garden"]
search = ["running shoes", "men's jacket", "usb-c", "4k monitor 27\"", "coffee & tea", "price < 50", "size: M", "o'brien", "rock 'n' roll", "c++ book", "50% off", "#1 bestseller", "what's new?", "kids (age 3-5)", "café crème", "t-shirt / tee", "back-to-school", "2-for-1", "email@example.com", "https://example.com/item/42"]

def email(f, l):
    return ("%s.%s@example.com" % (f, l)).lower().replace("'", "").replace(" ", "").encode("ascii", "ignore").decode()

def date():
    return "2025-%02d-%02dT%02d:%02d:%02dZ" % (random.randint(1, 12), random.randint(1, 28), random.randint(0, 23), random.randint(0, 59), random.randint(0, 59))

def customer():
    f, l = random.choice(first), random.choice(last)
    return {"first_name": f, "last_name": l, "email": email(f, l), "phone": "+353 1 %03d %04d" % (random.randint(100, 999), random.randint(0, 9999)),
            "address": {"street": random.choice(streets), "city": random.choice(cities), "postcode": "D0%d X%03d" % (random.randint(1, 9), random.randint(0, 999)), "country": random.choice(["IE", "BR", "CH", "US", "ZA", "PL", "CA", "JP"])},
            "newsletter": random.choice([True, False]), "created_at": date()}

def product():
    name = random.choice(products)
    return {"name": name, "sku": "%s-%04d" % ("".join(w[0] for w in name.split() if w[0].isalpha()).upper(), random.randint(0, 9999)),
            "price": round(random.uniform(1, 999), 2), "currency": random.choice(["EUR", "USD", "GBP"]), "stock": random.randint(0, 500),
            "category": random.choice(cats), "tags": random.sample(["new", "sale", "eco", "bestseller", "limited"], 2),
            "description": "**%s** is %s. See [the guide](https://example.com/guides/%d) for details.\n\n- %s\n- %s" % (name, random.choice(words), random.randint(1, 99), random.choice(words), random.choice(words)),
            "image_url": "https://cdn.example.com/img/%d.jpg?w=640&h=480" % random.randint(1, 9999), "active": True, "updated_at": date()}

def order():
    return {"customer_id": "cus_%06d" % random.randint(0, 999999), "items": [{"sku": "SKU-%04d" % random.randint(0, 9999), "qty": random.randint(1, 5), "unit_price": round(random.uniform(1, 200), 2)} for _ in range(random.randint(1, 4))],
            "shipping": {"method": random.choice(["standard", "express", "click & collect"]), "address": random.choice(streets) + ", " + random.choice(cities)},
            "note": random.choice(["Please leave at the door", "Gift - don't include the receipt!", "Ring twice; the bell's broken", "Deliver after 5 p.m.", "", "Call me: +1 (555) 010-9999"]),
            "coupon": random.choice(["", "SPRING-25", "WELCOME10"]), "placed_at": date()}

def review():
    f, l = random.choice(first), random.choice(last)
    return {"author": "%s %s" % (f, l), "rating": random.randint(1, 5), "title": random.choice(words).capitalize() + random.choice(["!", ".", " :)", "..."]),
            "body": "I've had it for %d weeks - %s. 10/10 would recommend to anyone who's into %s." % (random.randint(1, 12), random.choice(words), random.choice(cats))}

out = []
for _ in range(60):
    out.append({"method": "POST", "path": "/api/customers", "content_type": "application/json", "body": json.dumps(customer(), ensure_ascii=False)})
for _ in range(50):
    out.append({"method": "POST", "path": "/api/products", "content_type": "application/json", "body": json.dumps(product(), ensure_ascii=False)})
for _ in range(40):
    out.append({"method": "POST", "path": "/api/orders", "content_type": "application/json", "body": json.dumps(order(), ensure_ascii=False)})
for _ in range(30):
    out.append({"method": "PUT", "path": "/api/products/%d/reviews" % random.randint(1, 999), "content_type": "application/json", "body": json.dumps(review(), ensure_ascii=False)})
for q in search:
    out.append({"method": "GET", "path": "/api/products", "query": {"q": q, "page": str(random.randint(1, 9)), "sort": random.choice(["price", "-price", "name", "rating"])}})
for _ in range(20):
    out.append({"method": "GET", "path": "/api/orders", "query": {"from": date()[:10], "to": date()[:10], "status": random.choice(["paid", "shipped", "cancelled"]), "limit": "50"}})
for _ in range(10):
    out.append({"method": "POST", "path": "/api/search", "content_type": "application/x-www-form-urlencoded", "form": {"q": random.choice(search), "category": random.choice(cats)}})
for i, r in enumerate(out):
    r["name"] = "benign-%03d" % i
    print(json.dumps(r, ensure_ascii=False))
