"""nurture"""
