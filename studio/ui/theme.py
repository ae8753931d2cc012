"""The app's one theme: WCAG 2.2 AA contrast for every text and control, light, dark and high contrast.

Gradio's default theme draws white on orange-500 (2.8:1) on primary buttons and selected tabs, and grey-400 hint
text (1.9:1). Here the accent is orange-700/800 (5.2:1 and 7.3:1 against white), hints are neutral-600 (7.7:1) and
control borders neutral-500 (4.8:1, above the 3:1 WCAG asks of a control's outline). The high-contrast option (a
switch at the top of the page, remembered by the browser) is white on black with yellow actions, for projectors
that wash colours out; it is a class on the page, so it needs no reload and works with any tab.
"""

from __future__ import annotations

import gradio as gr

# Orange, shifted two steps darker where gradio reads text or fills behind text (c500, c600 are the accent).
ACCENT = gr.themes.Color(
    name="studio-orange",
    c50="#fff7ed",
    c100="#ffedd5",
    c200="#fed7aa",
    c300="#fdba74",
    c400="#c2410c",
    c500="#c2410c",  # 5.2:1 on white: selected tabs, primary buttons (white text), sliders, checkboxes
    c600="#9a3412",  # 7.3:1: hover and dark-mode fills
    c700="#9a3412",
    c800="#7c2d12",
    c900="#431407",
    c950="#2a0d04",
)

# The high-contrast class and where its switch keeps the choice.
HIGH_CONTRAST_CLASS = "studio-high-contrast"
HIGH_CONTRAST_KEY = "studio-high-contrast"


# Zinc, with its 400 (which gradio's components use for some text: the audio player's times and speed, "- or -")
# darkened to zinc-500, 4.8:1 on white.
NEUTRAL = gr.themes.Color(
    name="studio-zinc",
    c50="#fafafa",
    c100="#f4f4f5",
    c200="#e4e4e7",
    c300="#d4d4d8",
    c400="#71717a",
    c500="#71717a",
    c600="#52525b",
    c700="#3f3f46",
    c800="#27272a",
    c900="#18181b",
    c950="#0f0f11",
)


def make_theme() -> gr.themes.Base:
    """gradio's Default theme with AA colours (checked by axe-core in tests/test_a11y_browser.py)."""
    return gr.themes.Default(primary_hue=ACCENT, neutral_hue=NEUTRAL).set(
        body_text_color_subdued="*neutral_600",
        body_text_color_subdued_dark="*neutral_300",
        block_info_text_color="*neutral_600",
        block_info_text_color_dark="*neutral_300",
        block_title_text_color="*neutral_700",
        block_title_text_color_dark="*neutral_200",
        block_label_text_color="*neutral_700",
        block_label_text_color_dark="*neutral_200",
        input_placeholder_color="*neutral_600",
        input_placeholder_color_dark="*neutral_300",
        input_border_color="*neutral_500",
        input_border_color_dark="*neutral_400",
        checkbox_border_color="*neutral_500",
        checkbox_border_color_dark="*neutral_400",
        button_primary_background_fill="*primary_500",
        button_primary_background_fill_dark="*primary_600",
        button_primary_background_fill_hover="*primary_600",
        button_primary_background_fill_hover_dark="*primary_700",
        button_primary_text_color="white",
        button_cancel_background_fill="#b91c1c",  # 6.5:1 with white text (gradio's #ef4444 is 3.8:1)
        button_cancel_background_fill_dark="#b91c1c",
        button_cancel_background_fill_hover="#991b1b",
        button_cancel_text_color="white",
        link_text_color="#1d4ed8",
        link_text_color_dark="#93c5fd",
        color_accent_soft="*primary_50",
    )


# The high-contrast colours, as gradio's own CSS variables, under the class on <html>. !important: gradio writes
# its theme's variables on the page's root after ours.
_HIGH_CONTRAST_VARS = {
    "body-background-fill": "#000",
    "background-fill-primary": "#000",
    "background-fill-secondary": "#000",
    "block-background-fill": "#000",
    "panel-background-fill": "#000",
    "input-background-fill": "#000",
    "input-background-fill-focus": "#000",
    "body-text-color": "#fff",
    "body-text-color-subdued": "#fff",
    "block-info-text-color": "#fff",
    "block-title-text-color": "#fff",
    "block-label-text-color": "#fff",
    "block-label-background-fill": "#000",
    "block-title-background-fill": "#000",
    "input-placeholder-color": "#e5e5e5",
    "border-color-primary": "#fff",
    "border-color-accent": "#ffd400",
    "block-border-color": "#fff",
    "input-border-color": "#fff",
    "color-accent": "#ffd400",
    "color-accent-soft": "#333",
    "link-text-color": "#ffd400",
    "button-primary-background-fill": "#ffd400",
    "button-primary-background-fill-hover": "#fff",
    "button-primary-text-color": "#000",
    "button-primary-text-color-hover": "#000",
    "button-secondary-background-fill": "#000",
    "button-secondary-background-fill-hover": "#333",
    "button-secondary-text-color": "#fff",
    "button-secondary-border-color": "#fff",
    "button-cancel-background-fill": "#ffd400",
    "button-cancel-text-color": "#000",
    "checkbox-background-color": "#000",
    "checkbox-border-color": "#fff",
    "checkbox-label-background-fill": "#000",
    "checkbox-label-background-fill-selected": "#333",
    "checkbox-label-text-color": "#fff",
    "checkbox-label-text-color-selected": "#fff",
    "table-even-background-fill": "#000",
    "table-odd-background-fill": "#111",
    "table-text-color": "#fff",
    "code-background-fill": "#111",
    "neutral-50": "#111",
    "neutral-100": "#1a1a1a",
    "neutral-200": "#fff",
    "neutral-300": "#fff",
    "neutral-400": "#fff",
    "neutral-500": "#fff",
    "neutral-600": "#fff",
    "neutral-700": "#fff",
    "neutral-800": "#fff",
    "neutral-900": "#fff",
    "primary-500": "#ffd400",
    "primary-600": "#ffd400",
    "stat-background-fill": "#ffd400",
    "error-text-color": "#ffb4b4",
}

CSS = (
    f"html.{HIGH_CONTRAST_CLASS}, html.{HIGH_CONTRAST_CLASS} body, html.{HIGH_CONTRAST_CLASS} .gradio-container {{\n"
    + "".join(f"  --{name}: {value} !important;\n" for name, value in _HIGH_CONTRAST_VARS.items())
    + "}\n"
    + f"""
html.{HIGH_CONTRAST_CLASS} body, html.{HIGH_CONTRAST_CLASS} .gradio-container {{
  background: #000 !important; color: #fff; }}
html.{HIGH_CONTRAST_CLASS} .studio-problem {{ color: #ffb4b4 !important; }}
html.{HIGH_CONTRAST_CLASS} a {{ color: #ffd400 !important; }}
/* A focus ring everyone sees (gradio's is a faint shadow): 3 px, 2 px away from the control. */
:focus-visible {{ outline: 3px solid #1d4ed8 !important; outline-offset: 2px; }}
html.{HIGH_CONTRAST_CLASS} :focus-visible {{ outline-color: #ffd400 !important; }}
.studio-problem {{ color: #9a3412; }}
/* gradio's audio player writes its times in neutral-400 (1.9:1 on white). */
.timestamps time, time#time, time#duration {{ color: var(--body-text-color) !important; }}
/* WCAG 2.2 target size (24 px): gradio's icon buttons and download links are 18-20 px. */
button.icon-button {{ min-width: 24px !important; min-height: 24px !important; }}
a.download-link {{ display: inline-flex !important; min-width: 24px; min-height: 24px; }}
/* The download link wraps an icon button: one target (the link), not a link hidden under a button. */
a.download-link > button {{ pointer-events: none; }}
.playback, .playback span {{ color: var(--body-text-color) !important; }}
.studio-needs {{ border-left: 4px solid var(--color-accent); padding-left: 0.75em; }}
.studio-visually-hidden {{ position: absolute !important; width: 1px; height: 1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; }}
"""
)


def high_contrast_switch() -> gr.Checkbox:
    """The page's high-contrast switch; the browser remembers it (`HIGH_CONTRAST_KEY` in localStorage)."""
    box = gr.Checkbox(
        value=False,
        label="High contrast (white on black, for projectors)",
        elem_id="studio-high-contrast",
        container=False,
    )
    box.change(
        None,
        [box],
        None,
        js=f"""(on) => {{
            document.documentElement.classList.toggle("{HIGH_CONTRAST_CLASS}", on);
            try {{ localStorage.setItem("{HIGH_CONTRAST_KEY}", on ? "on" : "off"); }} catch (e) {{}}
        }}""",
    )
    return box


# On load: the remembered high-contrast choice, before the first paint where possible.
HIGH_CONTRAST_ON_LOAD_JS = f"""() => {{
    let on = false;
    try {{ on = localStorage.getItem("{HIGH_CONTRAST_KEY}") === "on"; }} catch (e) {{}}
    document.documentElement.classList.toggle("{HIGH_CONTRAST_CLASS}", on);
    return on;
}}"""
